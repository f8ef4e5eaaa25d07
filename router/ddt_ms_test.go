package router

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestDDTMapServerRouter: a Map-Server router with map_server.ddt (TTL,
// peers, signing key) answers a DDT Map-Request for an unregistered EID of
// its site with a signed MS-NOT-REGISTERED carrying the peers and the
// configured TTL, and /metrics counts the signature.
func TestDDTMapServerRouter(t *testing.T) {
	cfg := Config{
		Name:    "ms-ddt",
		Roles:   Roles{MapServer: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites:   []slowpath.SiteConfig{testSite()},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Metrics: MetricsOptions{Listen: "127.0.0.1:0"},
		MapServer: MapServerOptions{DDT: slowpath.DDTMapServerConfig{NotRegisteredTTL: 5 * time.Minute,
			Peers:   []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.31"), Priority: 1, Weight: 100}},
			Signing: slowpath.DDTSigning{KeyFile: "../wire/testdata/ddt_rsa_key.pem"}}},
	}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c := udpLocal(t)
	req := wire.MapRequest{Nonce: wire.Nonce{4}, ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr("127.0.0.1"))},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.9"))}}}
	inner, _ := req.Append(nil)
	ecm := wire.ECM{DDT: true, Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("10.1.0.9"),
		SrcPort: c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port(), DstPort: 4342, TTL: 64, Message: inner}
	b, _ := ecm.Append(nil)
	if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	var m wire.MapReferral
	if err := m.Parse(readType(t, c, wire.TypeMapReferral)); err != nil || m.Nonce != req.Nonce {
		t.Fatalf("Map-Referral %+v: %v", m, err)
	}
	rec := &m.Records[0]
	if wire.ReferralType(rec.Action) != wire.ReferralMSNotRegistered || rec.TTL != 5 || rec.Incomplete || len(rec.Locators) != 1 ||
		rec.Locators[0].Address.IP != netip.MustParseAddr("192.0.2.31") || rec.SigCount != 1 || len(m.Signatures) != 1 {
		t.Fatalf("record %+v, %d signatures", rec, len(m.Signatures))
	}
	if v := metrics(t, r)[`rloc_ddt_map_server_signatures_total{result="signed"}`]; v != 1 {
		t.Fatalf("signatures in /metrics: %v, want 1", v)
	}
}
