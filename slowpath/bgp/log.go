package bgp

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// logger adapts GoBGP's logger interface to a slog.Logger; GoBGP's Info
// messages go out at Debug (one per session event is too chatty for a
// router's log), warnings and errors as they are.
type logger struct {
	l     *slog.Logger
	level gobgplog.LogLevel
}

func newLogger(l *slog.Logger) *logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &logger{l: l.With("component", "bgp"), level: gobgplog.InfoLevel}
}

func (g *logger) log(lv slog.Level, msg string, f gobgplog.Fields) {
	if !g.l.Enabled(context.Background(), lv) {
		return
	}
	args := make([]any, 0, 2*len(f))
	for k, v := range f {
		args = append(args, k, v)
	}
	g.l.Log(context.Background(), lv, msg, args...)
}

// Panic logs at error level; GoBGP's own callers do not rely on a panic.
func (g *logger) Panic(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }

// Fatal logs at error level and does not exit: a router keeps running.
func (g *logger) Fatal(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }

// Error logs at error level.
func (g *logger) Error(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }

// Warn logs at warning level.
func (g *logger) Warn(msg string, f gobgplog.Fields) { g.log(slog.LevelWarn, msg, f) }

// Info logs at debug level.
func (g *logger) Info(msg string, f gobgplog.Fields) { g.log(slog.LevelDebug, msg, f) }

// Debug logs at debug level.
func (g *logger) Debug(msg string, f gobgplog.Fields) { g.log(slog.LevelDebug-4, msg, f) }

// SetLevel records GoBGP's level.
func (g *logger) SetLevel(l gobgplog.LogLevel) { g.level = l }

// GetLevel returns GoBGP's level.
func (g *logger) GetLevel() gobgplog.LogLevel { return g.level }
