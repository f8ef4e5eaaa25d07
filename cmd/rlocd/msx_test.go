package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestMSXConfigYAML: configs/msx.yaml's msx section reaches the router's
// configuration (addresses, key, prefixes, durations); mistakes are named
// by their key.
func TestMSXConfigYAML(t *testing.T) {
	cfg, good, dir := loadExample(t, "msx.yaml")
	x := cfg.MSX
	a := x.Agreements[0]
	if x.PageBytes != 1400 || x.CookieLifetime != 30*time.Second || a.Name != "domain2" ||
		a.Peers[0] != netip.MustParseAddrPort("192.0.2.50:4342") || a.Key.Alg != wire.AuthHMACSHA256128 ||
		a.Mode != slowpath.MSXModeCopy || len(a.Allow) != 3 || a.Filters[0].Prefix != netip.MustParsePrefix("10.1.0.0/16") ||
		a.PeerPrefixes[0].Prefix != netip.MustParsePrefix("10.2.0.0/16") || a.PeerTimeout != 3*time.Minute {
		t.Fatalf("msx %+v", x)
	}
	wantConfigErrors(t, dir, []configCase{
		{"bad mode", strings.Replace(good, "mode: copy", "mode: mirror", 1), "msx.agreements[0].mode"},
		{"bad peer", strings.Replace(good, "192.0.2.50:4342", "192.0.2.300:4342", 1), "msx.agreements[0].peers"},
		{"bad primitive", strings.Replace(good, "invocation]", "solicit]", 1), "msx.agreements[0].allow[2]"},
		{"unknown key", strings.Replace(good, "peer_timeout:", "peer_timout:", 1), "peer_timout"},
	})
}
