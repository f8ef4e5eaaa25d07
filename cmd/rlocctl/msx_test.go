package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestMSXAgreementsCommand runs `rlocctl msx agreements` against a
// Map-Resolver with one agreement: the table names it, its peer, mode and
// filters; -o json decodes to router.MSXAgreementInfo.
func TestMSXAgreementsCommand(t *testing.T) {
	cfg := router.Config{
		Name:    "msx",
		Roles:   router.Roles{MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		MSX: slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{{
			Name: "domain2", Peers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.9:4342")},
			Key:          slowpath.AuthKey{KeyID: 3, Alg: wire.AuthHMACSHA256128, Secret: "s3cret"},
			InstanceIDs:  []uint32{7},
			PeerPrefixes: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/16")}},
		}}},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var out bytes.Buffer
	if err := run([]string{"-s", cfg.Mgmt.Socket, "msx", "agreements"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"domain2", "192.0.2.9:4342", "copy", "subscribe,bulk,invocation", "iid 7", "[0]10.2.0.0/16", "3/hmac-sha256-128",
		"DOMAIN2 COUNTER", "subscribes"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Fatal("the secret is shown")
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "msx", "agreements", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var l []router.MSXAgreementInfo
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || len(l) != 1 || l[0].InstanceIDs[0] != 7 {
		t.Fatalf("json %v: %s", err, out.String())
	}
}
