package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnderlaySuppressHold: multicast.underlay.suppress_hold reaches the
// router's underlay options; a bad value names the key.
func TestUnderlaySuppressHold(t *testing.T) {
	b, err := os.ReadFile("../../configs/xtr-mcast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := strings.Replace(string(b), "  # underlay: {method: hash, range: 239.255.0.0/16, register_urloc: true, suppress_hold: 3s}",
		"  underlay: {method: hash, range: 239.255.0.0/16, register_urloc: true, suppress_hold: HOLD}", 1)
	if !strings.Contains(base, "HOLD") {
		t.Fatal("configs/xtr-mcast.yaml no longer has the commented underlay line")
	}
	dir := t.TempDir()
	load := func(hold string) (time.Duration, error) {
		f := filepath.Join(dir, "x.yaml")
		if err := os.WriteFile(f, []byte(strings.Replace(base, "HOLD", hold, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := loadConfig(f, flags())
		if err != nil {
			return 0, err
		}
		u := cfg.Multicast.Underlay
		if u == nil || !u.RegisterURLOC {
			t.Fatalf("underlay options %+v", u)
		}
		return u.SuppressHold, nil
	}
	if d, err := load("5s"); err != nil || d != 5*time.Second {
		t.Fatalf("suppress_hold 5s: %v %v", d, err)
	}
	if d, err := load(`""`); err != nil || d != 0 {
		t.Fatalf("suppress_hold unset: %v %v", d, err)
	}
	for _, bad := range []string{"soon", "-1s"} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), "multicast.underlay.suppress_hold") {
			t.Errorf("suppress_hold %s: %v", bad, err)
		}
	}
}
