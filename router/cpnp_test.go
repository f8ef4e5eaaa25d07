package router

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

// TestCPNPMetricsAPI: a Map-Resolver with a cpnp section and a configured
// contact orders at start: GET /v1/cpnp lists the order and /metrics
// counts it (cpnp_orders); a router without cpnp answers 404; a cpnp
// section on a router without a Map-Server or Map-Resolver is refused by
// its key.
func TestCPNPMetricsAPI(t *testing.T) {
	seed := make([]byte, 32)
	pub := ed25519.NewKeyFromSeed(append([]byte{1}, seed[1:]...)).Public().(ed25519.PublicKey)
	cc := slowpath.CPNPConfig{Identity: "d1", PrivateKey: base64.StdEncoding.EncodeToString(seed),
		Peers: []slowpath.CPNPPeer{{Name: "d2", PublicKey: base64.StdEncoding.EncodeToString(pub),
			Contact: netip.MustParseAddrPort("127.0.0.1:9"), Prefixes: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/16")}}}}}
	cfg := Config{
		Name:    "ms-cpnp",
		Roles:   Roles{MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Metrics: MetricsOptions{Listen: "127.0.0.1:0"},
		CPNP:    cc,
	}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var l CPNPInfo
	if code := call(t, r, "GET", "/v1/cpnp", nil, &l); code != 200 || l.Identity != "d1" || len(l.Agreements) != 1 ||
		l.Agreements[0].State != "quotation-sent" || l.Contacts[0].Contact != "127.0.0.1:9" {
		t.Fatalf("GET /v1/cpnp: %d %+v", code, l)
	}
	m := metrics(t, r)
	if v := m[`rloc_control_events_total{event="cpnp_orders"}`]; v != 1 {
		t.Fatalf("cpnp_orders %v", v)
	}
	if _, ok := m[`rloc_control_events_total{event="cpnp_bad_signature"}`]; !ok {
		t.Fatal("cpnp_bad_signature not exported")
	}
	if code := call(t, r, "GET", "/v1/msx/agreements", nil, nil); code != 200 {
		t.Fatalf("the interconnect built for cpnp is not listed: %d", code)
	}
	if code := call(t, startMS(t), "GET", "/v1/cpnp", nil, nil); code != 404 {
		t.Fatalf("without cpnp: %d, want 404", code)
	}
	bad := cfg
	bad.Roles = Roles{DDTNode: true}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "cpnp:") {
		t.Fatalf("cpnp without a Map-Server or Map-Resolver: %v", err)
	}
}
