package router

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

func msxRouterConfig(t *testing.T) Config {
	return Config{
		Name:    "msx-test",
		Roles:   Roles{MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		MSX: slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{{
			Name: "domain2", Peers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.9:4342")},
			Key: slowpath.AuthKey{KeyID: 3, Alg: wire.AuthHMACSHA256128, Secret: "s3cret"}, Mode: slowpath.MSXModeInvoke,
			Allow:        []string{slowpath.MSXBulk},
			Filters:      []slowpath.EIDPrefix{{IID: 4, Prefix: netip.MustParsePrefix("10.1.0.0/16")}},
			PeerPrefixes: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/16")}},
			Names:        []slowpath.SiteName{{IID: 4, Name: "*.lab.example"}},
		}}},
	}
}

// TestMSXAgreementsAPI: GET /v1/msx/agreements lists the configured
// agreement (its names after its prefixes; never its secret) with snake_case counters; a router without
// an interconnect answers 404.
func TestMSXAgreementsAPI(t *testing.T) {
	r, err := Start(msxRouterConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var l []MSXAgreementInfo
	if code := call(t, r, "GET", "/v1/msx/agreements", nil, &l); code != 200 {
		t.Fatalf("GET /v1/msx/agreements: %d", code)
	}
	if len(l) != 1 || l[0].Name != "domain2" || l[0].Mode != "invoke" || l[0].Peers[0] != "192.0.2.9:4342" ||
		l[0].Filters[0] != "[4]10.1.0.0/16" || l[0].PeerPrefixes[0] != "[0]10.2.0.0/16" || l[0].Alg != "hmac-sha256-128" ||
		len(l[0].Allow) != 1 || l[0].Rate != 2000 || len(l[0].Filters) != 2 || l[0].Filters[1] != "[4]*.lab.example" {
		t.Fatalf("listing %+v", l)
	}
	if _, ok := l[0].Counters["cookie_replayed"]; !ok {
		t.Fatalf("counters %v", l[0].Counters)
	}
	var raw []map[string]any
	call(t, r, "GET", "/v1/msx/agreements", nil, &raw)
	if fmt.Sprint(raw) == "" || strings.Contains(fmt.Sprint(raw), "s3cret") {
		t.Fatalf("listing shows the secret: %v", raw)
	}
	if code := call(t, startMS(t), "GET", "/v1/msx/agreements", nil, nil); code != 404 {
		t.Fatalf("without msx: %d, want 404", code)
	}
}

// TestMSXConfigErrors: the msx section's mistakes are named by their key.
func TestMSXConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"section without the role", func(c *Config) { c.Roles = Roles{DDTNode: true}; c.DDT = ddtRouterConfig(t).DDT }, "msx: set, but only the map-server or map-resolver role"},
		{"no name", func(c *Config) { c.MSX.Agreements[0].Name = "" }, "msx.agreements[0].name: empty"},
		{"no peers", func(c *Config) { c.MSX.Agreements[0].Peers = nil }, "msx.agreements[0].peers: no peer address"},
		{"peer without port", func(c *Config) {
			c.MSX.Agreements[0].Peers[0] = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 0)
		},
			"msx.agreements[0].peers[0]: invalid address"},
		{"bad mode", func(c *Config) { c.MSX.Agreements[0].Mode = "mirror" }, `msx.agreements[0].mode: "mirror"`},
		{"bad primitive", func(c *Config) { c.MSX.Agreements[0].Allow = []string{"solicit"} }, `msx.agreements[0].allow[0]: "solicit"`},
		{"empty secret", func(c *Config) { c.MSX.Agreements[0].Key.Secret = "" }, "msx.agreements[0].key.secret: empty"},
		{"invoke without prefixes", func(c *Config) { c.MSX.Agreements[0].PeerPrefixes = nil }, "msx.agreements[0].peer_prefixes: invoke mode"},
		{"filter host bits", func(c *Config) { c.MSX.Agreements[0].Filters[0].Prefix = netip.MustParsePrefix("10.1.0.1/16") },
			"msx.agreements[0].filters[0].eid"},
		{"page bytes", func(c *Config) { c.MSX.PageBytes = 70000 }, "msx.page_bytes: 70000"},
		{"twice", func(c *Config) { c.MSX.Agreements = append(c.MSX.Agreements, c.MSX.Agreements[0]) }, `msx.agreements[1].name: "domain2" used twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := msxRouterConfig(t)
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	c := msxRouterConfig(t)
	if err := c.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
}
