package main

import (
	"errors"
	"log/slog"

	"github.com/rloc-router/rloc/router"
)

// checkPrivileges warns, before start-up, about the capabilities the
// configuration needs and the process lacks (start-up then fails with
// "operation not permitted" at the step that needs them), and returns what
// the router needs.
func checkPrivileges(log *slog.Logger, cfg *router.Config) router.Privileges {
	last, err := router.LastCap()
	if err != nil {
		last = int(router.CapBPF)
	}
	eff, _ := router.CurrentCaps()
	return privileges(log, cfg, last, eff)
}

// privileges is checkPrivileges for a kernel whose last capability is
// last and a process with the effective set eff.
func privileges(log *slog.Logger, cfg *router.Config, last int, eff router.CapSet) router.Privileges {
	p := cfg.Privileges(last)
	if missing := p.StartUp &^ eff; missing != 0 {
		log.Warn("missing capabilities; start-up may fail", "missing", missing.String(), "need", p.StartUp.String())
	}
	return p
}

// dropPrivileges reduces rlocd, once the router runs, to the
// capabilities the running router needs (docs/operating-privileges.md).
// A binary linked with cgo cannot change its C threads: it keeps its
// capabilities and says so.
func dropPrivileges(log *slog.Logger, p router.Privileges) error {
	err := router.KeepCapabilities(p.Running)
	if errors.Is(err, router.ErrThreadsUnreachable) {
		log.Warn("capabilities not dropped", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	eff, _ := router.CurrentCaps()
	log.Info("capabilities dropped", "kept", eff.String())
	return nil
}
