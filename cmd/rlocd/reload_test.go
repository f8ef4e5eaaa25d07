package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// TestExampleConfigsReloadThemselves: every example configuration, loaded
// twice, is a reload router.CheckReload accepts (no key compares unequal
// to itself), and one with a changed etr/itr/map_server key is refused
// naming it.
func TestExampleConfigsReloadThemselves(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	demo, _ := filepath.Glob("../../configs/demo/*.yaml")
	for _, f := range append(files, demo...) {
		a, _, err := loadConfig(f, flags())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, _, _ := loadConfig(f, flags())
		if err := router.CheckReload(&a, &b); err != nil {
			t.Errorf("%s reloaded onto itself: %v", f, err)
		}
		want := []string{"control.rate_limit.map_request.per_source"}
		b.Control.RateLimit.MapRequest.PerSource++
		if b.Roles.ETR {
			b.ETR.RegisterInterval += time.Second
			want = append(want, "etr.register_interval")
		}
		if b.Roles.ITR || b.Roles.PITR || b.Roles.RTR {
			b.ITR.ProbeInterval += time.Second
			want = append(want, "itr.probe_interval")
		}
		if b.Roles.MapServer {
			b.MapServer.RegistrationTimeout += time.Second
			want = append(want, "map_server.registration_timeout")
		}
		err = router.CheckReload(&a, &b)
		if err == nil {
			t.Errorf("%s: changed %v accepted", f, want)
			continue
		}
		for _, k := range want {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("%s: error %q does not name %s", f, err, k)
			}
		}
	}
}

// TestReloadLogOptions: SIGHUP's reload applies a new log.level at once and
// refuses a new log.format (the handler is built at start).
func TestReloadLogOptions(t *testing.T) {
	dir := t.TempDir()
	base := "name: rl\nroles: [map-server]\ncontrol: {listen: [\"127.0.0.1:0\"]}\nmgmt: {socket: " + filepath.Join(dir, "m.sock") +
		"}\nsites: [{name: s, keys: [{id: 1, secret: k}], prefixes: [{eid: 10.0.0.0/8}]}]\n"
	file := filepath.Join(dir, "rl.yaml")
	write := func(extra string) {
		if err := os.WriteFile(file, []byte(base+extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("log: {level: info}\n")
	fs := flags()
	cfg, opts, err := loadConfig(file, fs)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var level slog.LevelVar
	level.Set(opts.logLevel)
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: &level}))
	cfg.Logger = log
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()

	write("log: {level: debug}\n")
	if err := reload(r, file, fs, log, opts, &level); err != nil {
		t.Fatalf("reload with a new level: %v", err)
	}
	if level.Level() != slog.LevelDebug || !strings.Contains(buf.String(), "log level changed") {
		t.Errorf("level %v after the reload; log:\n%s", level.Level(), buf.String())
	}
	write("log: {level: debug, format: json}\n")
	if err := reload(r, file, fs, log, opts, &level); err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("reload with a new format: %v, want an error naming log.format", err)
	}
	write("log: {level: debug}\nmap_server: {registration_timeout: 9m}\n")
	if err := reload(r, file, fs, log, opts, &level); err == nil || !strings.Contains(err.Error(), "map_server.registration_timeout") {
		t.Errorf("reload with a new registration timeout: %v", err)
	}
}
