package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestSubscriptionsCommand runs `rlocctl subscriptions` against a
// Map-Server router holding one subscription: the table shows it and the
// counters, -o json decodes to router.SubscriptionsInfo.
func TestSubscriptionsCommand(t *testing.T) {
	key := slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "s"}
	id := strings.Repeat("c1", 16)
	cfg := router.Config{
		Name:    "ms",
		Roles:   router.Roles{MapServer: true, MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites: []slowpath.SiteConfig{{Name: "s1", Keys: []slowpath.AuthKey{key},
			Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")}}}}},
		Mgmt: router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
	}
	cfg.MapServer.PubSub.Subscribers = []router.SubscriberOptions{{XTRID: id, Key: key}}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := wire.MapRequest{XTRIDPresent: true, ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr("127.0.0.1"))},
		Records: []wire.EIDRecord{{Notify: true, MaskLen: 16, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0"))}}}
	for i := range req.XTRID {
		req.XTRID[i] = 0xc1
	}
	b, _ := req.Append(nil)
	if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	// The Map-Server answers the request; by then the subscription is
	// kept.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadFromUDPAddrPort(make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-s", cfg.Mgmt.Socket, "subscriptions"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id, "10.1.0.0/16", "1 subscriptions", "MAP-SERVER", "subscribed"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "subs", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var got router.SubscriptionsInfo
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Subscriptions) != 1 || got.Subscriptions[0].XTRID != id ||
		got.MapServer["active"] != 1 {
		t.Fatalf("json %v: %s", err, out.String())
	}
}
