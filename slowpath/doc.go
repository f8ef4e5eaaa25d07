// Package slowpath is the core of rloc's LISP control plane (RFC 9301):
// the UDP control sockets with batched I/O, one event loop that owns all
// protocol state, the timer heap (Core.Schedule; a fake clock through
// Options.Clock and Core.Tick in tests), the per-source rate limit,
// dispatch of every received message by type (and Map-Request kind, and
// RFC 8113 sub-type) to the handlers the roles registered (Core.Handle),
// each message decoded once (Msg), the per-type counters and the events.
//
// It knows no role. The roles live in packages beneath it (mapserver,
// resolver, xtr, mcast) and meet through small interfaces
// (resolver.Database); package control assembles them from a Config.
// Shared primitives: regstore (registrations) and request (outstanding
// requests). The concepts that cross packages are declared here once:
// the configuration (config.go, mcast_config.go), Installer,
// MulticastInstaller, SGKey, Stats, Event (the fast path's misses arrive as
// fastpath.MissEvent, declared where they are produced).
package slowpath
