package control

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// logCapture is a slog handler keeping every record: level, message and
// attributes as strings.
type logCapture struct {
	mu   sync.Mutex
	recs []capturedLog
}

type capturedLog struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	c := capturedLog{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		c.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, c)
	h.mu.Unlock()
	return nil
}

// find returns the records of level and message msg.
func (h *logCapture) find(level slog.Level, msg string) []capturedLog {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []capturedLog
	for _, r := range h.recs {
		if r.level == level && r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// tick moves a fake clock by d and runs the engine's timers due.
func tick(t *testing.T, e *Engine, clk *fakeClock, d time.Duration) {
	t.Helper()
	clk.Add(d)
	if err := e.Core().Tick(); err != nil {
		t.Fatal(err)
	}
}

// TestUnconfirmedRegistrationLogged: an ETR whose registrations the
// Map-Server refuses (wrong secret) warns once, one register interval
// after the first unconfirmed round, naming the Map-Server, the key ID, the
// algorithm and the length, layout and coverage it sent; later unconfirmed
// rounds do not repeat it. The Map-Server logs the refusal with its reason
// once per site and reason a minute, the next line counting those held
// back.
func TestUnconfirmedRegistrationLogged(t *testing.T) {
	msLog, etrLog := &logCapture{}, &logCapture{}
	msClk, etrClk := newFakeClock(), newFakeClock()
	mc := msConfig(siteConfig("a", "10.1.0.0/16", true))
	mc.Logger = slog.New(msLog)
	ms := newEngineWith(t, mc, nil, slowpath.Options{Clock: msClk.Now})
	key := badKey
	key.Layout, key.HMACLength, key.Coverage = slowpath.LayoutRFC9301, slowpath.HMACLengthTruncated, slowpath.CoverageRecords
	c := etrConfig(ms.Addr(), key, mapping("10.1.2.0/24", "192.0.2.1"))
	c.Retries = 1
	c.RetryInterval = time.Second
	etr := newEngineWith(t, Config{ETR: c, Logger: slog.New(etrLog)}, nil, slowpath.Options{Clock: etrClk.Now})
	tick(t, etr, etrClk, 0)
	badAuth := func() uint64 { return ms.Stats().Msg(wire.TypeMapRegister).BadAuth }
	waitFor(t, 5*time.Second, "the first register refused", func() bool { return badAuth() == 1 })
	tick(t, etr, etrClk, time.Second) // the retry
	waitFor(t, 5*time.Second, "the retry refused", func() bool { return badAuth() == 2 })
	tick(t, etr, etrClk, 2*time.Second) // given up
	const warnMsg = "registration not confirmed: no verified Map-Notify within the register interval"
	if n := len(etrLog.find(slog.LevelWarn, warnMsg)); n != 0 {
		t.Fatalf("warned %d times before the register interval ended", n)
	}
	tick(t, etr, etrClk, c.RegisterInterval-3*time.Second) // the next round
	warns := etrLog.find(slog.LevelWarn, warnMsg)
	if len(warns) != 1 {
		t.Fatalf("%d warnings after one register interval, want 1", len(warns))
	}
	want := map[string]string{"ms": ms.Addr().String(), "key_id": "1", "alg": "hmac-sha256-128",
		"hmac_length": "truncated", "layout": "rfc9301", "coverage": "records"}
	for k, v := range want {
		if warns[0].attrs[k] != v {
			t.Errorf("warning %s = %q, want %q (%v)", k, warns[0].attrs[k], v, warns[0].attrs)
		}
	}
	waitFor(t, 5*time.Second, "the next round refused", func() bool { return badAuth() == 3 })
	tick(t, etr, etrClk, c.RegisterInterval)
	waitFor(t, 5*time.Second, "a third round refused", func() bool { return badAuth() >= 5 })
	if n := len(etrLog.find(slog.LevelWarn, warnMsg)); n != 1 {
		t.Errorf("%d warnings after three unconfirmed rounds, want 1", n)
	}

	// The Map-Server: one line for the five refusals of the minute.
	refused := msLog.find(slog.LevelWarn, "Map-Register refused")
	if len(refused) != 1 || refused[0].attrs["site"] != "a" || refused[0].attrs["reason"] == "" {
		t.Fatalf("Map-Server logged %+v, want one refusal of site a", refused)
	}
	before := badAuth()
	msClk.Add(time.Minute)
	tick(t, etr, etrClk, c.RegisterInterval)
	waitFor(t, 5*time.Second, "a refusal after the minute", func() bool { return badAuth() > before })
	refused = msLog.find(slog.LevelWarn, "Map-Register refused")
	if len(refused) != 2 || refused[1].attrs["suppressed"] != fmt.Sprint(before-1) {
		t.Fatalf("Map-Server logged %+v, want a second line counting %d suppressed", refused, before-1)
	}

	// The site's key changed to the ETR's: the next round is confirmed,
	// which is logged, and a later outage would be warned about again.
	site := siteConfig("a", "10.1.0.0/16", true)
	site.Keys = []AuthKey{key}
	if err := ms.SetSites([]SiteConfig{site}); err != nil {
		t.Fatal(err)
	}
	tick(t, etr, etrClk, c.RegisterInterval)
	waitFor(t, 5*time.Second, "the registration confirmed", func() bool {
		return len(etrLog.find(slog.LevelInfo, "registration confirmed")) == 1
	})
}

// TestConfirmedRegistrationLogged: an accepted registration is logged at
// debug by the Map-Server and its Map-Notify by the ETR, each with the
// variant it verified as, and counted by variant.
func TestConfirmedRegistrationLogged(t *testing.T) {
	msLog, etrLog := &logCapture{}, &logCapture{}
	mc := msConfig(siteConfig("a", "10.1.0.0/16", true))
	mc.Logger = slog.New(msLog)
	ms := newEngine(t, mc, nil)
	etr := newEngine(t, Config{ETR: etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1")), Logger: slog.New(etrLog)}, nil)
	waitFor(t, 5*time.Second, "Map-Notify verified by the ETR", func() bool { return etr.Stats().RegisterNotified >= 1 })
	acc := msLog.find(slog.LevelDebug, "Map-Register accepted")
	if len(acc) == 0 || acc[0].attrs["site"] != "a" || acc[0].attrs["hmac_length"] != "full" || acc[0].attrs["coverage"] != "message" {
		t.Fatalf("Map-Server debug log: %+v", acc)
	}
	notes := etrLog.find(slog.LevelDebug, "Map-Notify accepted")
	if len(notes) == 0 || notes[0].attrs["ms"] != ms.Addr().String() || notes[0].attrs["hmac_length"] != "full" {
		t.Fatalf("ETR debug log: %+v", notes)
	}
	a := ms.Stats().Msg(wire.TypeMapRegister).Auth
	if a.Alg[wire.AuthHMACSHA256128] < 1 || a.Full < 1 || a.Message < 1 || a.KeyIDSet < 1 || a.Truncated != 0 || a.Records != 0 {
		t.Errorf("Map-Server auth counters %+v", a)
	}
	if a := etr.Stats().Msg(wire.TypeMapNotify).Auth; a.Full < 1 || a.Alg[wire.AuthHMACSHA256128] < 1 {
		t.Errorf("ETR auth counters %+v", a)
	}
}
