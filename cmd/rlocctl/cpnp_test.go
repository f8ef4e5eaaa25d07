package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
)

// TestCPNPCommand: `rlocctl cpnp keygen` makes a key that a cpnp section
// takes; `rlocctl cpnp` shows the identity, its public key and the
// configured contact; -o json decodes to router.CPNPInfo; withdrawing an
// agreement that does not exist is an error naming it.
func TestCPNPCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"cpnp", "keygen"}, &out); err != nil {
		t.Fatal(err)
	}
	var priv, pub string
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "private_key: "); ok {
			priv = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "public_key:"); ok {
			pub = strings.TrimSpace(v)
		}
	}
	seed, _ := base64.StdEncoding.DecodeString(priv)
	if len(seed) != 32 || base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)) != pub {
		t.Fatalf("keygen: %s", out.String())
	}
	cfg := router.Config{
		Name:    "cpnp",
		Roles:   router.Roles{MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		CPNP: slowpath.CPNPConfig{Identity: "domain1", PrivateKey: priv, Peers: []slowpath.CPNPPeer{{Name: "domain2",
			PublicKey: pub, Contact: netip.MustParseAddrPort("127.0.0.1:9"),
			Prefixes: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/16")}}}}},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "cpnp"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"identity domain1", pub, "127.0.0.1:9", "customer", "quotation-sent", "[0]10.2.0.0/16", "config", "orders"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "cpnp", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var l router.CPNPInfo
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || l.Identity != "domain1" || len(l.Agreements) != 1 {
		t.Fatalf("json %v: %s", err, out.String())
	}
	err = run([]string{"-s", cfg.Mgmt.Socket, "cpnp", "withdraw", "127.0.0.1:9", "nope"}, &out)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("withdraw: %v", err)
	}
}
