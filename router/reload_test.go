package router

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
)

// TestReloadRefusesRestartKeys: a reload applies sites (a Reloadable key);
// one that also changes keys Reload cannot apply is refused as a whole,
// naming each such key, and nothing of it takes effect; reloading the same
// configuration is accepted.
func TestReloadRefusesRestartKeys(t *testing.T) {
	r := startMS(t)
	same := r.Config()
	if err := r.Reload(same); err != nil {
		t.Fatalf("reloading the same configuration: %v", err)
	}

	two := r.Config()
	s2 := testSite()
	s2.Name = "site2"
	s2.Prefixes = []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.2.0.0/24")}}}
	two.Sites = append(two.Sites, s2)
	mixed := two
	mixed.MapServer.RegistrationTimeout = 7 * time.Minute
	mixed.Control.RateLimit.MapRequest.PerSource = 50
	mixed.Nonce = true
	err := r.Reload(mixed)
	if err == nil {
		t.Fatal("reload changing map_server, control and nonce accepted")
	}
	for _, k := range []string{"map_server.registration_timeout", "control.rate_limit.map_request.per_source", "nonce", "needs a restart"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
	if keys, _, _ := strings.Cut(err.Error(), ": "); strings.Contains(keys, "sites") {
		t.Errorf("error %q names sites, which a reload applies", err)
	}
	if n := len(r.Config().Sites); n != 1 {
		t.Fatalf("refused reload applied its sites: %d sites", n)
	}
	if err := r.Reload(two); err != nil {
		t.Fatalf("reload of sites alone: %v", err)
	}
	if n := len(r.Config().Sites); n != 2 {
		t.Fatalf("sites after reload: %d, want 2", n)
	}
}
