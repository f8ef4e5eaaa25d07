package router

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestMgmtSubscriptions: a subscriber configured by router name subscribes
// with a Map-Request (N and I bits); the next registration reaches it as a
// Map-Notify signed with its key, and /v1/subscriptions lists the
// subscription and the counters in one key style.
func TestMgmtSubscriptions(t *testing.T) {
	subKey := slowpath.AuthKey{KeyID: 3, Alg: wire.AuthHMACSHA256128, Secret: "subscriber-secret"}
	cfg := Config{
		Name:    "ms-test",
		Roles:   Roles{MapServer: true, MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites:   []slowpath.SiteConfig{testSite()},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
	}
	cfg.MapServer.PubSub.Subscribers = []SubscriberOptions{{Name: "itr-x", Key: subKey}, {XTRID: strings.Repeat("ab", 16), Key: subKey}}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c := udpLocal(t)
	local := c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	req := wire.MapRequest{Nonce: wire.Nonce{0, 0, 0, 0, 0, 0, 1, 0}, XTRIDPresent: true, XTRID: xtrID("itr-x"), SiteID: 4,
		ITRRLOCs: []wire.Address{wire.IPAddress(local.Addr())},
		Records:  []wire.EIDRecord{{Notify: true, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0"))}}}
	b, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	readType(t, c, wire.TypeMapReply) // answered as any Map-Request (negative)
	register(t, r, c, testSecret, true, 1)
	for {
		var n wire.MapNotify
		msg := readType(t, c, wire.TypeMapNotify)
		if err := wire.VerifyMapNotify(msg, []byte(subKey.Secret), &n); err != nil {
			continue // the registration's own Map-Notify, signed with the site key
		}
		if n.Nonce != req.Nonce || n.XTRID != xtrID("itr-x") || len(n.Records) != 1 {
			t.Fatalf("subscriber's Map-Notify %+v", n)
		}
		break
	}
	var got SubscriptionsInfo
	if code := call(t, r, "GET", "/v1/subscriptions", nil, &got); code != 200 {
		t.Fatalf("subscriptions: %d", code)
	}
	if len(got.Subscriptions) != 1 {
		t.Fatalf("subscriptions %+v", got)
	}
	s := got.Subscriptions[0]
	if s.XTRID != xtrID("itr-x").String() || s.SiteID != 4 || s.EID != "10.1.0.0/24" || s.Notify != local.String() ||
		len(s.ITRRLOCs) != 1 || s.Notifies != 1 || !s.Pending {
		t.Fatalf("subscription %+v", s)
	}
	if got.MapServer["subscribed"] != 1 || got.MapServer["notifies"] != 1 || got.ITR != nil {
		t.Fatalf("counters %+v / %+v", got.MapServer, got.ITR)
	}
}

// TestPubSubConfigChecks: the keys that name a bad pub/sub setting.
func TestPubSubConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) {
			c.MapServer.PubSub.Subscribers = []SubscriberOptions{{XTRID: "12", Key: testSite().Keys[0]}}
		}, "map_server.pubsub.subscribers[0].xtr_id"},
		{func(c *Config) {
			c.MapServer.PubSub.Subscribers = []SubscriberOptions{{Name: "a", XTRID: strings.Repeat("0", 32), Key: testSite().Keys[0]}}
		}, "map_server.pubsub.subscribers[0]: name and xtr_id"},
		{func(c *Config) { c.MapServer.PubSub.Subscribers = []SubscriberOptions{{Name: "a"}} }, "map_server.pubsub.subscribers[0].key"},
		{func(c *Config) { c.MapServer.PubSub.MaxTotal = -1 }, "map_server.pubsub: negative"},
		{func(c *Config) { c.ITR.Subscribe.Enabled = true }, "itr: set, but only the itr"},
	} {
		cfg := Config{Name: "ms", Roles: Roles{MapServer: true}, Sites: []slowpath.SiteConfig{testSite()}}
		tc.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
}

// TestSubscribeConfigFromRouter: itr.subscribe takes the xTR-ID from the
// router's name, the site-ID from etr.site_id and, without keys of its
// own, the map_servers keys.
func TestSubscribeConfigFromRouter(t *testing.T) {
	k := slowpath.AuthKey{KeyID: 2, Alg: wire.AuthHMACSHA1_96, Secret: "ms-key"}
	cfg := Config{Name: "xtr-a", Roles: Roles{ITR: true, ETR: true}, ETR: ETROptions{SiteID: 9},
		MapServers: []slowpath.MapServerPeer{{Addr: netip.MustParseAddrPort("192.0.2.100:4342"), Key: k}}}
	if cfg.subscribeConfig() != nil {
		t.Fatal("subscription without itr.subscribe.enabled")
	}
	cfg.ITR.Subscribe = SubscribeOptions{Enabled: true, IIDs: []uint32{5}}
	sc := cfg.subscribeConfig()
	if sc == nil || sc.XTRID != xtrID("xtr-a") || sc.SiteID != 9 || len(sc.Keys) != 1 || sc.Keys[0] != k || !sc.Covers(5) || sc.Covers(0) {
		t.Fatalf("subscribe config %+v", sc)
	}
	own := slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "own"}
	cfg.ITR.Subscribe.Keys = []slowpath.AuthKey{own}
	if sc := cfg.subscribeConfig(); len(sc.Keys) != 1 || sc.Keys[0] != own {
		t.Fatalf("own keys: %+v", sc.Keys)
	}
}
