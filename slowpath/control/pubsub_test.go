package control

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// Tests of RFC 9437 publish/subscribe: the Map-Server's subscriptions and
// Map-Notifies (mapserver/pubsub.go) and the ITR's subscribe option
// (xtr/subscribe.go).

var (
	xtrA = wire.XTRID{0xa0, 1}
	xtrB = wire.XTRID{0xb0, 2}
)

// subscribeConfig subscribes in every instance-ID with testKey as xtrA.
func subscribeConfig() *slowpath.SubscribeConfig {
	return &slowpath.SubscribeConfig{Keys: []AuthKey{testKey}, XTRID: xtrA, SiteID: 7}
}

// pubsubLab starts a Map-Server/Map-Resolver that proxy-replies for site
// "a" (10.1.0.0/16 and more-specifics), an ETR B registering mb there, and
// an xTR A (ETR registering 10.1.7.0/24 with xtrA, so that its ITR may
// subscribe, and an ITR subscribing). The ETRs send no SMRs: the
// Map-Server answers for them.
func pubsubLab(t *testing.T, mb Mapping, opt slowpath.Options) (ms, etrB, xtr *Engine, inst *fakeInstaller) {
	t.Helper()
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.PubSub.NotifyInterval = 50 * time.Millisecond
	ms = newEngine(t, c, nil)
	eb := etrConfig(ms.Addr(), testKey, mb)
	eb.ProxyReply, eb.XTRID, eb.DeregisterOnStop = true, xtrB, true
	etrB = newEngine(t, Config{ETR: eb}, nil)
	ea := etrConfig(ms.Addr(), testKey, mapping("10.1.7.0/24", "192.0.2.70"))
	ea.ProxyReply, ea.XTRID, ea.SiteID = true, xtrA, 7
	ic := itrConfig(ms.Addr())
	ic.Subscribe = subscribeConfig()
	inst = &fakeInstaller{active: true}
	xtr = newEngineWith(t, Config{ETR: ea, ITR: ic}, inst, opt)
	waitFor(t, 5*time.Second, "registrations", func() bool {
		return etrB.Stats().RegisterNotified >= 1 && xtr.Stats().RegisterNotified >= 1
	})
	return ms, etrB, xtr, inst
}

// lastPositive returns the latest positive install for p, if any.
func lastPositive(inst *fakeInstaller, p string) (Resolved, bool) {
	pos := inst.positives()
	for i := len(pos) - 1; i >= 0; i-- {
		if pos[i].Prefix == netip.MustParsePrefix(p) {
			return pos[i], true
		}
	}
	return Resolved{}, false
}

// rlocIs reports whether the latest install for p has the one RLOC a.
func rlocIs(inst *fakeInstaller, p, a string) bool {
	r, ok := lastPositive(inst, p)
	return ok && len(r.RLOCs) == 1 && r.RLOCs[0].Addr == netip.MustParseAddr(a)
}

// TestSubscribeNotifyAck: a subscribing ITR gets the mapping in a signed
// Map-Notify and acknowledges it; a new RLOC set, a more-specific
// registration inside the subscribed prefix and a withdrawal each reach it
// as a Map-Notify, without SMR or TTL refresh.
func TestSubscribeNotifyAck(t *testing.T) {
	ms, etrB, xtr, inst := pubsubLab(t, mapping("10.1.2.0/24", "192.0.2.1"), slowpath.Options{})
	xtr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "subscription acknowledged", func() bool { return ms.PubSubStats().Acked == 1 })
	subs := ms.Subscriptions()
	if len(subs) != 1 || subs[0].XTRID != xtrA || subs[0].SiteID != 7 || subs[0].EID.Prefix != netip.MustParsePrefix("10.1.2.0/24") ||
		len(subs[0].ITRRLOCs) != 1 || subs[0].ITRRLOCs[0] != lo4 || subs[0].Notify.Port() != xtr.Addr().Port() {
		t.Fatalf("subscriptions %+v", subs)
	}
	if s := xtr.SubscribeStats(); s.Requests != 1 || s.Notifies != 1 || s.Acks != 1 || s.Active != 1 {
		t.Fatalf("ITR subscribe stats %+v", s)
	}

	// A new RLOC set: the ETR re-registers, the Map-Server notifies.
	if err := etrB.SetMappings([]Mapping{mapping("10.1.2.0/24", "192.0.2.9")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "new RLOC set installed", func() bool { return rlocIs(inst, "10.1.2.0/24", "192.0.2.9") })
	waitFor(t, 5*time.Second, "second Ack", func() bool { return ms.PubSubStats().Acked == 2 })

	// A more-specific registration inside the subscribed mapping.
	ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.128/25", "192.0.2.25"))
	ec.ProxyReply, ec.XTRID = true, wire.XTRID{0xc0}
	newEngine(t, Config{ETR: ec}, nil)
	waitFor(t, 5*time.Second, "more-specific installed", func() bool { return rlocIs(inst, "10.1.2.128/25", "192.0.2.25") })

	// Withdrawal (TTL-0 registration on stop): a record without locators
	// and TTL 0 makes the ITR ask again on the next packet.
	etrB.Close()
	waitFor(t, 5*time.Second, "withdrawal", func() bool {
		for _, n := range inst.negatives() {
			if n.p.Prefix == netip.MustParsePrefix("10.1.2.0/24") && n.action == wire.ActionSendMapRequest {
				return true
			}
		}
		return false
	})
	st := xtr.Stats()
	if st.SMRInvoked != 0 || st.Msg(wire.TypeMapNotify).BadAuth != 0 {
		t.Fatalf("SMR-invoked %d, bad notifies %d", st.SMRInvoked, st.Msg(wire.TypeMapNotify).BadAuth)
	}
	if s := xtr.SubscribeStats(); s.Withdrawals != 1 || s.Unknown != 0 || s.BadAuth != 0 {
		t.Fatalf("ITR subscribe stats %+v", s)
	}
	if ps := ms.PubSubStats(); ps.GaveUp != 0 || ps.AckBadAuth != 0 || ps.Refused != 0 {
		t.Fatalf("Map-Server pub/sub stats %+v", ps)
	}
}

// TestSubscriptionExpiryNotified: a registration that times out reaches
// the subscriber as a withdrawal.
func TestSubscriptionExpiryNotified(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.RegistrationTimeout = 300 * time.Millisecond
	c.MapServer.PubSub.Subscribers = []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}}
	ms := newEngine(t, c, nil)
	eb := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	eb.ProxyReply = true
	etr := newEngine(t, Config{ETR: eb}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	ic := itrConfig(ms.Addr())
	ic.Subscribe = subscribeConfig()
	inst := &fakeInstaller{active: true}
	itr := newEngine(t, Config{ITR: ic}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "subscribed", func() bool { return itr.SubscribeStats().Notifies == 1 })
	etr.Close() // no deregistration: the registration expires
	waitFor(t, 5*time.Second, "expiry notified", func() bool { return itr.SubscribeStats().Withdrawals == 1 })
}

// injectRequest hands the Map-Server a plain subscribing Map-Request from
// src for prefix p with the given xTR-ID and nonce.
func injectRequest(t *testing.T, ms *Engine, src netip.AddrPort, xtr wire.XTRID, p string, nonce uint64, unsub bool) {
	t.Helper()
	pp := netip.MustParsePrefix(p)
	req := wire.MapRequest{XTRIDPresent: true, XTRID: xtr, SiteID: 1,
		ITRRLOCs: []wire.Address{wire.IPAddress(src.Addr())},
		Records:  []wire.EIDRecord{{Notify: true, MaskLen: uint8(pp.Bits()), EID: wire.IPAddress(pp.Addr())}}}
	if unsub {
		req.ITRRLOCs = []wire.Address{{}}
	}
	binary.BigEndian.PutUint64(req.Nonce[:], nonce)
	b, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	inject(t, ms, src, b)
}

// registerTo injects a Map-Register of p with rloc, signed with key.
func registerTo(t *testing.T, ms *Engine, p, rloc string, ttl uint32, key AuthKey) {
	t.Helper()
	registerAs(t, ms, p, rloc, ttl, key, wire.XTRID{})
}

// registerAs is registerTo with the xTR-ID xtr (I bit) unless it is zero.
func registerAs(t *testing.T, ms *Engine, p, rloc string, ttl uint32, key AuthKey, xtr wire.XTRID) {
	t.Helper()
	pp := netip.MustParsePrefix(p)
	reg := wire.MapRegister{Nonce: newNonce(), ProxyReply: true, Auth: wire.NewAuth(key.KeyID, key.Alg, false),
		XTRIDPresent: xtr != wire.XTRID{}, XTRID: xtr,
		Records: []wire.Record{{TTL: ttl, MaskLen: uint8(pp.Bits()), EID: wire.IPAddress(pp.Addr()),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr(rloc))}}}}}
	b, err := reg.AppendSigned(nil, []byte(key.Secret))
	if err != nil {
		t.Fatal(err)
	}
	inject(t, ms, netip.MustParseAddrPort("127.0.0.1:4999"), b)
}

// TestSubscriptionChangeOneStep: the Map-Notify to a subscriber leaves in
// the same processing step as the registration that changed its mapping;
// a refresh with the same content sends nothing.
func TestSubscriptionChangeOneStep(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.PubSub.Subscribers = []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}}
	ms := newEngine(t, c, nil)
	sub := netip.MustParseAddrPort("127.0.0.1:5000")
	injectRequest(t, ms, sub, xtrA, "10.1.2.0/24", 100, false)
	if ps := ms.PubSubStats(); ps.Subscribed != 1 || ps.Notifies != 0 {
		t.Fatalf("after subscribing to an unregistered prefix: %+v", ps)
	}
	// Each registration and the Map-Notifies sent by the end of its step:
	// new, refresh (nothing), new RLOC, outside the prefix (nothing).
	for i, step := range []struct {
		p, rloc string
		want    uint64
	}{{"10.1.2.0/24", "192.0.2.1", 1}, {"10.1.2.0/24", "192.0.2.1", 1}, {"10.1.2.0/24", "192.0.2.2", 2}, {"10.1.3.0/24", "192.0.2.3", 2}} {
		registerTo(t, ms, step.p, step.rloc, 10, testKey)
		if n := ms.PubSubStats().Notifies; n != step.want {
			t.Fatalf("step %d (%s → %s): %d Map-Notifies, want %d", i, step.p, step.rloc, n, step.want)
		}
	}
	// Unsubscribe: AFI 0 ITR-RLOC.
	injectRequest(t, ms, sub, xtrA, "10.1.2.0/24", 200, true)
	if ps := ms.PubSubStats(); ps.Unsubscribed != 1 || ps.Active != 0 {
		t.Fatalf("after unsubscribing: %+v", ps)
	}
}

// TestSubscriptionRefusedUnknown: an xTR-ID neither registered nor
// configured gets no subscription and no Map-Notify; one registered here
// may subscribe until its registration is withdrawn.
func TestSubscriptionRefusedUnknown(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	src := netip.MustParseAddrPort("127.0.0.1:5000")
	registerTo(t, ms, "10.1.2.0/24", "192.0.2.1", 10, testKey)
	injectRequest(t, ms, src, xtrB, "10.1.2.0/24", 1, false)
	if ps := ms.PubSubStats(); ps.Refused != 1 || ps.Active != 0 || ps.Notifies != 0 {
		t.Fatalf("unknown subscriber: %+v", ps)
	}
	registerAs(t, ms, "10.1.9.0/24", "192.0.2.9", 10, testKey, xtrB)
	injectRequest(t, ms, src, xtrB, "10.1.2.0/24", 100, false)
	if ps := ms.PubSubStats(); ps.Subscribed != 1 || ps.Notifies != 1 {
		t.Fatalf("registered subscriber: %+v", ps)
	}
	registerAs(t, ms, "10.1.9.0/24", "192.0.2.9", 0, testKey, xtrB) // withdrawn
	injectRequest(t, ms, src, xtrB, "10.1.3.0/24", 200, false)
	if ps := ms.PubSubStats(); ps.Refused != 2 || ps.Subscribed != 1 {
		t.Fatalf("after its withdrawal: %+v", ps)
	}
}

// TestSubscriptionBounds: a flood of subscriptions is held to the
// per-subscriber and total bounds, the excess counted.
func TestSubscriptionBounds(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.PubSub = slowpath.PubSubConfig{MaxPerSubscriber: 4, MaxTotal: 6,
		Subscribers: []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}, {XTRID: xtrB, Key: testKey}}}
	ms := newEngine(t, c, nil)
	src := netip.MustParseAddrPort("127.0.0.1:5000")
	for j, x := range []wire.XTRID{xtrA, xtrB} {
		for i := range 10 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 24)
			injectRequest(t, ms, src, x, p.String(), uint64(100*j+i+1), false)
		}
	}
	ps := ms.PubSubStats()
	if ps.Active != 6 || ps.Subscribed != 6 || ps.OverSubscriber != 6 || ps.OverTotal != 8 {
		t.Fatalf("after the flood: %+v (want 6 active, 6 over the per-subscriber bound, 8 over the total)", ps)
	}
	// Renewing an existing subscription is not a new one.
	injectRequest(t, ms, src, xtrA, "10.1.0.0/24", 50, false)
	if ps := ms.PubSubStats(); ps.Active != 6 || ps.Renewed != 1 {
		t.Fatalf("renewal: %+v", ps)
	}
}

// TestSubscriptionLispersTrailer: lispers.net's subscription, with its
// 16-byte xTR-ID trailer, subscribes a configured subscriber.
func TestSubscriptionLispersTrailer(t *testing.T) {
	raw, _ := hex.DecodeString("10100001887766554433221100000001c00002018010400300000200000a000003e800010a0200000123456789abcdef0011223344556677")
	var id wire.XTRID
	hex.Decode(id[:], []byte("0123456789abcdef0011223344556677"))
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.PubSub.Subscribers = []slowpath.SubscriberConfig{{XTRID: id, Key: testKey}}
	ms := newEngine(t, c, nil)
	inject(t, ms, netip.MustParseAddrPort("127.0.0.1:5000"), raw)
	subs := ms.Subscriptions()
	if len(subs) != 1 || subs[0].XTRID != id || subs[0].SiteID != 0 || subs[0].EID.IID != 1000 ||
		subs[0].EID.Prefix != netip.MustParsePrefix("10.2.0.0/16") {
		t.Fatalf("subscriptions %+v", subs)
	}
}

// fakeSubscriber is a UDP socket acting as a subscribing ITR.
type fakeSubscriber struct {
	t    *testing.T
	conn *net.UDPConn
}

func newFakeSubscriber(t *testing.T) *fakeSubscriber {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeSubscriber{t: t, conn: conn}
}

func (f *fakeSubscriber) addr() netip.AddrPort { return f.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// read returns the next datagram that is not a Map-Reply (the Map-Server
// answers a subscribing request too) and its source.
func (f *fakeSubscriber) read() ([]byte, netip.AddrPort) {
	f.t.Helper()
	for {
		buf := make([]byte, 4096)
		f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			f.t.Fatal(err)
		}
		if n > 0 && wire.MessageType(buf[0]>>4) == wire.TypeMapReply {
			continue
		}
		return buf[:n], from
	}
}

// TestSubscriptionRetransmitAck: the Map-Server retransmits a Map-Notify
// until it is acknowledged; Acks with an unknown nonce or a wrong key do
// not stop it; a subscriber that never acknowledges is dropped.
func TestSubscriptionRetransmitAck(t *testing.T) {
	clk := newFakeClock()
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.PubSub.Subscribers = []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}}
	c.MapServer.PubSub.NotifyInterval, c.MapServer.PubSub.NotifyTries = time.Second, 3
	ms := newEngineWith(t, c, nil, slowpathOptions(clk))
	sub := newFakeSubscriber(t)
	registerTo(t, ms, "10.1.2.0/24", "192.0.2.1", 10, testKey)
	injectRequest(t, ms, sub.addr(), xtrA, "10.1.2.0/24", 1000, false)
	b, from := sub.read()
	var n wire.MapNotify
	if err := wire.VerifyMapNotify(b, []byte(testKey.Secret), &n); err != nil {
		t.Fatalf("subscriber's Map-Notify does not verify: %v", err)
	}
	if binary.BigEndian.Uint64(n.Nonce[:]) != 1000 || !n.XTRIDPresent || n.XTRID != xtrA || len(n.Records) != 1 {
		t.Fatalf("first Map-Notify: %+v, want the request's nonce, the xTR-ID and the mapping", n)
	}
	// A wrongly signed Ack and one with an unknown nonce change nothing.
	ack := wire.MapNotifyAck(n)
	ack.Auth = wire.NewAuth(testKey.KeyID, testKey.Alg, false)
	bad, _ := ack.AppendSigned(nil, []byte(badKey.Secret))
	inject(t, ms, from, bad)
	unknown := ack
	unknown.Nonce = wire.Nonce{1, 2, 3}
	ub, _ := unknown.AppendSigned(nil, []byte(testKey.Secret))
	inject(t, ms, from, ub)
	if ps := ms.PubSubStats(); ps.AckBadAuth != 1 || ps.Acked != 0 {
		t.Fatalf("after bad Acks: %+v", ps)
	}
	if ms.Stats().Msg(wire.TypeMapNotifyAck).Ignored != 1 {
		t.Fatalf("Ack with an unknown nonce not counted: %+v", ms.Stats().Msg(wire.TypeMapNotifyAck))
	}
	// Still outstanding: retransmitted after the interval.
	clk.Add(time.Second)
	_ = ms.Core().Tick()
	b2, _ := sub.read()
	if string(b2) != string(b) {
		t.Fatal("retransmission differs from the Map-Notify")
	}
	good, _ := ack.AppendSigned(nil, []byte(testKey.Secret))
	inject(t, ms, from, good)
	if ps := ms.PubSubStats(); ps.Acked != 1 || ps.Retransmits != 1 {
		t.Fatalf("after the Ack: %+v", ps)
	}
	// The next change counts on from the nonce; never acknowledged, the
	// subscription lapses after NotifyTries sends.
	registerTo(t, ms, "10.1.2.0/24", "192.0.2.2", 10, testKey)
	b3, _ := sub.read()
	if err := wire.VerifyMapNotify(b3, []byte(testKey.Secret), &n); err != nil || binary.BigEndian.Uint64(n.Nonce[:]) != 1001 {
		t.Fatalf("second Map-Notify: nonce %x, %v (want 1001)", n.Nonce, err)
	}
	for range 3 {
		clk.Add(4 * time.Second)
		_ = ms.Core().Tick()
	}
	if ps := ms.PubSubStats(); ps.GaveUp != 1 || ps.Lapsed != 1 || ps.Active != 0 {
		t.Fatalf("unacknowledged subscriber: %+v", ps)
	}
}

// fakeMR is a UDP socket acting as the ITR's Map-Resolver and Map-Server.
func readSubscription(t *testing.T, mr *fakeSubscriber) (wire.MapRequest, netip.AddrPort) {
	t.Helper()
	b, _ := mr.read()
	var ecm wire.ECM
	if err := ecm.Parse(b); err != nil {
		t.Fatalf("not an ECM: %v", err)
	}
	var req wire.MapRequest
	if err := req.Parse(ecm.Message); err != nil {
		t.Fatal(err)
	}
	return req, netip.AddrPortFrom(ecm.Src, ecm.SrcPort)
}

// TestITRNotifyChecks: the ITR sets the N and I bits, installs only
// Map-Notifies of its subscription that verify, in nonce order,
// acknowledges each (a retransmission again, without installing), and
// drops and counts unsigned, wrongly signed and unknown ones.
func TestITRNotifyChecks(t *testing.T) {
	mr := newFakeSubscriber(t)
	ic := itrConfig(mr.addr())
	ic.Subscribe = subscribeConfig()
	// Another Map-Server's key with the same Key ID and algorithm first:
	// each key is tried.
	ic.Subscribe.Keys = []AuthKey{{KeyID: testKey.KeyID, Alg: testKey.Alg, Secret: "other-ms"}, testKey}
	inst := &fakeInstaller{active: true}
	itr := newEngine(t, Config{ITR: ic}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	req, _ := readSubscription(t, mr)
	if !req.XTRIDPresent || req.XTRID != xtrA || req.SiteID != 7 || req.NoSiteID || !req.Records[0].Notify {
		t.Fatalf("subscribing request %+v", req)
	}
	base := binary.BigEndian.Uint64(req.Nonce[:])
	rec := wire.Record{TTL: 60, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0")),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}
	send := func(nonce uint64, key AuthKey, alg wire.AuthAlg, r wire.Record) {
		n := wire.MapNotify{Records: []wire.Record{r}, Auth: wire.NewAuth(key.KeyID, alg, false)}
		binary.BigEndian.PutUint64(n.Nonce[:], nonce)
		b, err := n.AppendSigned(nil, []byte(key.Secret))
		if alg == wire.AuthNone {
			b, err = n.Append(nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		inject(t, itr, mr.addr(), b)
	}
	send(base, badKey, testKey.Alg, rec)
	send(base, testKey, wire.AuthNone, rec)
	send(base+1000, testKey, testKey.Alg, rec)
	if s := itr.SubscribeStats(); s.BadAuth != 2 || s.Unknown != 1 || s.Notifies != 0 || len(inst.positives()) != 0 {
		t.Fatalf("bad Map-Notifies: %+v, %d installs", s, len(inst.positives()))
	}
	send(base, testKey, testKey.Alg, rec)
	ackb, _ := mr.read()
	var ack wire.MapNotifyAck
	if err := wire.VerifyMapNotifyAck(ackb, []byte(testKey.Secret), &ack); err != nil || binary.BigEndian.Uint64(ack.Nonce[:]) != base {
		t.Fatalf("Map-Notify-Ack: %v nonce %x", err, ack.Nonce)
	}
	if !rlocIs(inst, "10.1.2.0/24", "192.0.2.1") {
		t.Fatalf("not installed: %+v", inst.positives())
	}
	// A retransmission: acknowledged, not installed again.
	send(base, testKey, testKey.Alg, rec)
	mr.read()
	if s := itr.SubscribeStats(); s.Duplicates != 1 || s.Acks != 2 || len(inst.positives()) != 1 {
		t.Fatalf("retransmitted Map-Notify: %+v, %d installs", s, len(inst.positives()))
	}
	// The next one (a nonce skipped: the Map-Server replaced one) withdraws.
	gone := wire.Record{TTL: 0, MaskLen: 24, EID: rec.EID}
	send(base+2, testKey, testKey.Alg, gone)
	mr.read()
	if s := itr.SubscribeStats(); s.Withdrawals != 1 || s.Notifies != 2 {
		t.Fatalf("withdrawal: %+v", s)
	}
	// Replaying the first is now stale.
	send(base, testKey, testKey.Alg, rec)
	if s := itr.SubscribeStats(); s.Unknown != 2 || len(inst.positives()) != 1 {
		t.Fatalf("replayed Map-Notify: %+v", s)
	}
}

// TestITRResubscribeAndUnsubscribe: a subscribed mapping in use is
// requested again (with the N bit) every Resubscribe, which renews the
// subscription at a Map-Server that lost it; once idle it is unsubscribed
// (ITR-RLOC AFI 0).
func TestITRResubscribeAndUnsubscribe(t *testing.T) {
	clk := newFakeClock()
	mr := newFakeSubscriber(t)
	ic := itrConfig(mr.addr())
	ic.Subscribe = subscribeConfig()
	ic.Subscribe.Resubscribe = 10 * time.Second
	inst := &fakeInstaller{active: true}
	itr := newEngineWith(t, Config{ITR: ic}, inst, slowpathOptions(clk))
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	req, inner := readSubscription(t, mr)
	// Answer with a 24-hour mapping: without subscription it would not be
	// asked for again before 23 hours.
	rep := wire.MapReply{Nonce: req.Nonce, Records: []wire.Record{{TTL: 24 * 60, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0")),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
	b, _ := rep.Append(nil)
	if _, err := mr.conn.WriteToUDPAddrPort(b, inner); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	clk.Add(10 * time.Second)
	_ = itr.Core().Tick()
	again, _ := readSubscription(t, mr)
	if !again.Records[0].Notify || again.Records[0].MaskLen != 24 || again.Nonce == req.Nonce {
		t.Fatalf("renewal %+v: want a new subscribing request for the installed /24", again)
	}
	if s := itr.SubscribeStats(); s.Requests != 2 || s.Active != 1 {
		t.Fatalf("after renewal: %+v", s)
	}
	rep.Nonce = again.Nonce
	b, _ = rep.Append(nil)
	mr.conn.WriteToUDPAddrPort(b, inner)
	waitFor(t, 5*time.Second, "renewal answered", func() bool { return len(inst.positives()) == 2 })
	inst.mu.Lock()
	inst.active = false
	inst.mu.Unlock()
	clk.Add(10 * time.Second)
	_ = itr.Core().Tick()
	un, _ := readSubscription(t, mr)
	if len(un.ITRRLOCs) != 1 || un.ITRRLOCs[0].AFI != 0 || !un.Records[0].Notify || !un.XTRIDPresent {
		t.Fatalf("unsubscription %+v", un)
	}
	if s := itr.SubscribeStats(); s.Unsubscribes != 1 || s.Active != 0 {
		t.Fatalf("after unsubscribing: %+v", s)
	}
}

// TestSubscriptionRenewalReplacesSequence: a renewal restarts the nonce
// sequence, so an unacknowledged Map-Notify of the old one is dropped
// instead of retransmitted into a lapse of the renewed subscription.
func TestSubscriptionRenewalReplacesSequence(t *testing.T) {
	clk := newFakeClock()
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.PubSub.Subscribers = []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}}
	c.MapServer.PubSub.NotifyInterval, c.MapServer.PubSub.NotifyTries = time.Second, 2
	ms := newEngineWith(t, c, nil, slowpathOptions(clk))
	src := netip.MustParseAddrPort("127.0.0.1:5000")
	injectRequest(t, ms, src, xtrA, "10.1.2.0/24", 10, false)
	registerTo(t, ms, "10.1.2.0/24", "192.0.2.1", 10, testKey)
	registerTo(t, ms, "10.1.2.0/24", "192.0.2.1", 0, testKey) // withdrawn: Map-Notify 11 pending
	injectRequest(t, ms, src, xtrA, "10.1.2.0/24", 500, false)
	for range 3 {
		clk.Add(4 * time.Second)
		_ = ms.Core().Tick()
	}
	if ps := ms.PubSubStats(); ps.Active != 1 || ps.Lapsed != 0 || ps.Renewed != 1 || ps.GaveUp != 0 {
		t.Fatalf("after the renewal: %+v", ps)
	}
}
