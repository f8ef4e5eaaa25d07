package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// TestCPNPConfigYAML: configs/cpnp.yaml's cpnp section reaches the
// router's configuration (identity, trust list, offer, order); mistakes
// are named by their key.
func TestCPNPConfigYAML(t *testing.T) {
	cfg, good, dir := loadExample(t, "cpnp.yaml")
	x := cfg.CPNP
	if x.Identity != "domain1" || len(x.Peers) != 1 || x.Peers[0].Name != "domain2" ||
		x.Offer.Prefixes[0].Prefix != netip.MustParsePrefix("10.1.0.0/16") || x.Offer.MaxDuration != 24*time.Hour ||
		x.Order.Mode != "copy" || len(x.Order.Primitives) != 2 || x.RetryInterval != 30*time.Second {
		t.Fatalf("cpnp %+v", x)
	}
	if _, err := x.Key(); err != nil {
		t.Fatal(err)
	}
	wantConfigErrors(t, dir, []configCase{
		{"bad mode", strings.Replace(good, "mode: copy", "mode: mirror", 1), "cpnp.order.mode"},
		{"bad key", strings.Replace(good, "mqD1LY/g0L7oIGsvmXZjntL7E7CkCRfh+Rw2R3kK60o=", "mqD1", 1), "cpnp.peers[0].public_key"},
		{"bad primitive", strings.Replace(good, "invocation]", "solicit]", 1), "cpnp.offer.primitives[2]"},
		{"unknown key", strings.Replace(good, "retry_interval:", "retry_intervall:", 1), "retry_intervall"},
	})
}

// configCase is a variant of an example configuration and the key its
// error must name.
type configCase struct{ name, yaml, want string }

// wantConfigErrors loads every case and checks that it fails naming its
// key.
func wantConfigErrors(t *testing.T, dir string, cases []configCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, dir, tc.name, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// loadExample loads configs/name as rlocd does; it returns the
// configuration, the file's text and a directory for variants of it.
func loadExample(t *testing.T, name string) (router.Config, string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(f, flags())
	if err != nil {
		t.Fatal(err)
	}
	return cfg, string(b), dir
}
