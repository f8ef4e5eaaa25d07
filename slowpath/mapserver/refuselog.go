package mapserver

import (
	"context"
	"log/slog"
	"time"
)

// refuseLogInterval is how often a site's refused registrations are logged
// at most: one line, then a count of the lines held back. An ETR refreshes
// its registration about once a minute (RFC 9301 §8.2), so a misconfigured
// ETR is logged about once per refresh.
const refuseLogInterval = time.Minute

// maxRefuseLogSites bounds the sites (or, for registers no site matched,
// sources) the limiter remembers; past it, it starts afresh.
const maxRefuseLogSites = 4096

// refuseLog rate-limits the log lines of refused registrations: at most one
// per site (the source when no site matched) and reason per
// refuseLogInterval, the next one carrying how many were suppressed in
// between. A different reason is logged at once: it is news.
type refuseLog struct {
	last map[string]refuseState
}

// refuseState is one site's last logged line and what was held back since.
type refuseState struct {
	at         time.Time
	suppressed int
}

// log writes the refusal line args for site at now unless one was written
// for it less than refuseLogInterval ago.
func (r *refuseLog) log(l *slog.Logger, now time.Time, site string, msg string, args ...any) {
	r.logAt(l, slog.LevelWarn, now, site, msg, args...)
}

// logAt is log at level.
func (r *refuseLog) logAt(l *slog.Logger, level slog.Level, now time.Time, site string, msg string, args ...any) {
	if r.last == nil || len(r.last) >= maxRefuseLogSites {
		r.last = map[string]refuseState{}
	}
	st, seen := r.last[site]
	if seen && now.Sub(st.at) < refuseLogInterval {
		st.suppressed++
		r.last[site] = st
		return
	}
	if st.suppressed > 0 {
		args = append(args, "suppressed", st.suppressed)
	}
	r.last[site] = refuseState{at: now}
	l.Log(context.Background(), level, msg, args...)
}
