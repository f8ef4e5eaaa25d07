package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

func itrConfig(mrs ...netip.AddrPort) *ITRConfig {
	return &ITRConfig{
		MapResolvers:       mrs,
		ITRRLOCs:           []netip.Addr{lo4},
		RetransmitInterval: 100 * time.Millisecond,
		MinRequestInterval: 10 * time.Millisecond,
	}
}

// msWithETR starts a Map-Server/Map-Resolver and an ETR registered with it.
func msWithETR(t *testing.T, proxy bool, maps ...Mapping) (ms, etr *Engine) {
	t.Helper()
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapResolver.Aggregates = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
	ms = newEngine(t, c, nil)
	ec := etrConfig(ms.Addr(), testKey, maps...)
	ec.ProxyReply = proxy
	etr = newEngine(t, Config{ETR: ec}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	return ms, etr
}

func TestResolveProxyReply(t *testing.T) {
	ms, etr := msWithETR(t, true, mapping("10.1.2.0/24", "192.0.2.1", "192.0.2.2"))
	inst := &fakeInstaller{}
	itr := newEngine(t, Config{ITR: itrConfig(ms.Addr())}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3"), Src: netip.MustParseAddr("10.9.0.1")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	got := inst.positives()[0]
	if got.Prefix != netip.MustParsePrefix("10.1.2.0/24") || got.Authoritative || len(got.RLOCs) != 2 ||
		got.RLOCs[0].Addr != netip.MustParseAddr("192.0.2.1") || got.RLOCs[0].Priority != 1 || got.RLOCs[1].Priority != 2 ||
		got.TTL != 24*time.Hour {
		t.Fatalf("installed %+v", got)
	}
	if ms.Stats().ProxyReplies != 1 || etr.Stats().Msg(wire.TypeMapReply).Sent != 0 {
		t.Fatalf("proxy replies %d, ETR replies %d", ms.Stats().ProxyReplies, etr.Stats().Msg(wire.TypeMapReply).Sent)
	}
	st := itr.Stats()
	if st.Resolutions != 1 || st.ResolveLatency.Count != 1 {
		t.Fatalf("resolutions %d, latency observations %d", st.Resolutions, st.ResolveLatency.Count)
	}
}

func TestResolveForwardedToETR(t *testing.T) {
	ms, etr := msWithETR(t, false, mapping("10.1.2.0/24", "192.0.2.1"))
	inst := &fakeInstaller{}
	itr := newEngine(t, Config{ITR: itrConfig(ms.Addr())}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	got := inst.positives()[0]
	if !got.Authoritative || got.Prefix != netip.MustParsePrefix("10.1.2.0/24") || len(got.RLOCs) != 1 {
		t.Fatalf("installed %+v, want the ETR's authoritative answer", got)
	}
	if ms.Stats().Forwarded != 1 || ms.Stats().ProxyReplies != 0 || etr.Stats().Msg(wire.TypeMapReply).Sent != 1 {
		t.Fatalf("forwarded %d proxy %d etr replies %d", ms.Stats().Forwarded, ms.Stats().ProxyReplies, etr.Stats().Msg(wire.TypeMapReply).Sent)
	}
}

// TestForwardRoundRobin: requests for an EID two ETRs registered are spread
// over both.
func TestForwardRoundRobin(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	var etrs []*Engine
	for i := range 2 {
		c := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1", "192.0.2.2"))
		c.XTRID[0] = byte(i + 1)
		e := newEngine(t, Config{ETR: c}, nil)
		waitFor(t, 5*time.Second, "notify", func() bool { return e.Stats().RegisterNotified >= 1 })
		etrs = append(etrs, e)
	}
	inst := &fakeInstaller{}
	clk := newFakeClock()
	itr := newEngineWith(t, Config{ITR: itrConfig(ms.Addr())}, inst, slowpath.Options{Clock: clk.Now})
	for i := range 4 {
		// The fake installer keeps nothing: each miss, later than a miss
		// queued behind the last install would be, is resolved again.
		clk.Add(2 * time.Second)
		itr.Miss(MissEvent{Dst: netip.AddrFrom4([4]byte{10, 1, 2, byte(10 + i)})})
		waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == i+1 })
	}
	for i, e := range etrs {
		if n := e.Stats().Msg(wire.TypeMapReply).Sent; n != 2 {
			t.Errorf("ETR %d answered %d of 4 requests, want 2", i, n)
		}
	}
}

func TestResolveNegative(t *testing.T) {
	ms, _ := msWithETR(t, true, mapping("10.1.2.0/24", "192.0.2.1"))
	inst := &fakeInstaller{}
	itr := newEngine(t, Config{ITR: itrConfig(ms.Addr())}, inst)
	// Outside every known prefix: native-forward, 15 minutes; 128.0.0.0/1 is
	// the least specific prefix holding 192.168.1.1 and not 10.0.0.0/8.
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("192.168.1.1")})
	// Inside the site prefix 10.1.0.0/16 but not registered: send-map-request.
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.3.1")})
	// Inside the aggregate 10.0.0.0/8 only.
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.200.0.1")})
	waitFor(t, 5*time.Second, "negative installs", func() bool { return len(inst.negatives()) == 3 })
	want := map[netip.Prefix]negInstall{
		netip.MustParsePrefix("128.0.0.0/1"):  {action: wire.ActionNativelyForward, ttl: 15 * time.Minute},
		netip.MustParsePrefix("10.1.3.0/24"):  {action: wire.ActionSendMapRequest, ttl: time.Minute},
		netip.MustParsePrefix("10.128.0.0/9"): {action: wire.ActionSendMapRequest, ttl: time.Minute},
	}
	for _, n := range inst.negatives() {
		w, ok := want[n.p.Prefix]
		if !ok || w.action != n.action || w.ttl != n.ttl {
			t.Errorf("negative %v %v %v not expected", n.p.Prefix, n.action, n.ttl)
		}
	}
	if ms.Stats().NegativeReplies != 3 {
		t.Errorf("negative replies = %d", ms.Stats().NegativeReplies)
	}
}

// TestRetransmitFailover: the first Map-Resolver never answers; the ITR
// retransmits to the second, which does.
func TestRetransmitFailover(t *testing.T) {
	silent, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ms, _ := msWithETR(t, true, mapping("10.1.2.0/24", "192.0.2.1"))
	inst := &fakeInstaller{}
	itr := newEngine(t, Config{ITR: itrConfig(silent.LocalAddr().(*net.UDPAddr).AddrPort(), ms.Addr())}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	// The silent resolver got the first request, a well-formed ECM.
	buf := make([]byte, 2048)
	silent.SetReadDeadline(time.Now().Add(time.Second))
	n, err := silent.Read(buf)
	if err != nil {
		t.Fatalf("silent resolver got nothing: %v", err)
	}
	var ecm wire.ECM
	var req wire.MapRequest
	if err := ecm.Parse(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if err := req.Parse(ecm.Message); err != nil {
		t.Fatal(err)
	}
	if ecm.Dst != netip.MustParseAddr("10.1.2.3") || ecm.SrcPort != itr.Addr().Port() {
		t.Fatalf("ECM inner dst %v src port %d", ecm.Dst, ecm.SrcPort)
	}
	if st := itr.Stats(); st.Retransmits != 1 || st.Resolutions != 1 {
		t.Fatalf("retransmits %d resolutions %d", st.Retransmits, st.Resolutions)
	}
}

func TestResolveGivesUp(t *testing.T) {
	silent, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c := itrConfig(silent.LocalAddr().(*net.UDPAddr).AddrPort())
	c.RetransmitInterval = 10 * time.Millisecond
	c.MaxTries = 3
	itr := newEngine(t, Config{ITR: c}, &fakeInstaller{})
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "timeout", func() bool { return itr.Stats().ResolveTimeouts == 1 })
	if st := itr.Stats(); st.Msg(wire.TypeECM).Sent != 3 {
		t.Fatalf("sent %d ECMs, want 3", st.Msg(wire.TypeECM).Sent)
	}
}

// TestMissRateLimit: misses for one EID while it resolves send one request.
func TestMissRateLimit(t *testing.T) {
	silent, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c := itrConfig(silent.LocalAddr().(*net.UDPAddr).AddrPort())
	c.RetransmitInterval = time.Hour
	itr := newEngine(t, Config{ITR: c}, &fakeInstaller{})
	for range 50 {
		itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	}
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.4")})
	waitFor(t, 5*time.Second, "requests", func() bool { return itr.Stats().Msg(wire.TypeECM).Sent >= 2 })
	if n := itr.Stats().Msg(wire.TypeECM).Sent; n != 2 {
		t.Fatalf("sent %d requests for 2 EIDs", n)
	}
}

func TestSMR(t *testing.T) {
	ms, etr := msWithETR(t, false, mapping("10.1.2.0/24", "192.0.2.1"))
	inst := &fakeInstaller{}
	itr := newEngine(t, Config{ITR: itrConfig(ms.Addr())}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	if err := etr.SetMappings([]Mapping{mapping("10.1.2.0/24", "192.0.2.7")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "SMR-invoked install", func() bool { return len(inst.positives()) == 2 })
	if got := inst.positives()[1]; got.RLOCs[0].Addr != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("after SMR installed %+v", got)
	}
	if etr.Stats().SMRsSent != 1 || itr.Stats().SMRInvoked != 1 {
		t.Fatalf("SMRs sent %d, SMR-invoked requests %d", etr.Stats().SMRsSent, itr.Stats().SMRInvoked)
	}
}

// TestRefreshActive: an active mapping is re-resolved before its TTL ends.
func TestRefreshActive(t *testing.T) {
	m := mapping("10.1.2.0/24", "192.0.2.1")
	m.TTL = time.Minute
	ms, _ := msWithETR(t, true, m)
	inst := &fakeInstaller{active: true}
	clk := newFakeClock()
	itr := newEngineWith(t, Config{ITR: itrConfig(ms.Addr())}, inst, slowpath.Options{Clock: clk.Now})
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	// Record TTLs are whole minutes; the refresh timer is due at 30 s on
	// the ITR's fake clock.
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	clk.Add(30 * time.Second)
	if err := itr.c.Tick(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "refresh", func() bool { return len(inst.positives()) == 2 })
	inst.mu.Lock()
	inst.active = false
	inst.mu.Unlock()
	clk.Add(30 * time.Second)
	_ = itr.c.Tick()
	_ = itr.do(func() {
		if itr.itr.Tracked() != 0 {
			t.Error("idle mapping still tracked after its refresh time")
		}
	})
}

func TestRLOCProbing(t *testing.T) {
	maps := []Mapping{mapping("10.1.2.0/24", "127.0.0.1")}
	etr1 := newEngine(t, Config{ETR: &ETRConfig{Mappings: maps}}, nil)
	port := etr1.Addr().Port()
	inst := &fakeInstaller{}
	c := itrConfig(etr1.Addr())
	c.ProbeInterval = 30 * time.Millisecond
	c.ProbePort = port
	itr := newEngine(t, Config{ITR: c}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	waitFor(t, 5*time.Second, "answered probes", func() bool { return etr1.Stats().Msg(wire.TypeMapReply).Sent >= 4 })
	if r := inst.reaches(); len(r) != 0 {
		t.Fatalf("reachability changed while the ETR answers: %+v", r)
	}
	etr1.Close()
	waitFor(t, 5*time.Second, "RLOC down", func() bool { return len(inst.reaches()) == 1 })
	if r := inst.reaches()[0]; r.up || r.rloc != lo4 || r.p.Prefix != netip.MustParsePrefix("10.1.2.0/24") {
		t.Fatalf("reach change %+v", r)
	}
	newEngine(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(lo4, port)}, ETR: &ETRConfig{Mappings: maps}}, nil)
	waitFor(t, 5*time.Second, "RLOC up", func() bool { return len(inst.reaches()) == 2 })
	if r := inst.reaches()[1]; !r.up {
		t.Fatalf("reach change %+v", r)
	}
	if st := itr.Stats(); st.RLOCDown != 1 || st.RLOCUp != 1 {
		t.Fatalf("down %d up %d", st.RLOCDown, st.RLOCUp)
	}
}

// TestProbeReplyMarksProbedLocator: the ETR's probe reply has the P bit and
// the p bit on the locator the probe was sent to.
func TestProbeReplyMarksProbedLocator(t *testing.T) {
	etr := newEngine(t, Config{ETR: &ETRConfig{Mappings: []Mapping{mapping("10.1.2.0/24", "192.0.2.1", "127.0.0.1")}}}, nil)
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := wire.MapRequest{Probe: true, Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0"))}}}
	b, _ := req.Append(nil)
	cl.WriteToUDPAddrPort(b, etr.Addr())
	buf := make([]byte, 2048)
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := cl.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var rep wire.MapReply
	if err := rep.Parse(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if !rep.Probe || rep.Nonce != req.Nonce || !rep.Records[0].Authoritative {
		t.Fatalf("reply %+v", rep)
	}
	l := rep.Records[0].Locators
	if l[0].Probed || !l[1].Probed {
		t.Fatalf("probed bits: %v %v, want false true", l[0].Probed, l[1].Probed)
	}
}

// TestProbeReplyMatching: a probe counts as answered only by a reply with
// its nonce for the probed RLOC (its p-bit locator, else its source) while
// it is outstanding. A reply from another address, one whose p bit names
// another RLOC, one with a wrong nonce, and a late reply after the probe's
// round ended are ignored; a probe that only got those is a miss. A reply
// from another address of the ETR that marks the probed RLOC counts (the
// ETR answers to an ITR-RLOC, possibly of the other address family).
func TestProbeReplyMatching(t *testing.T) {
	rl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ms, _ := msWithETR(t, true, mapping("10.1.2.0/24", "127.0.0.1"))
	inst := &fakeInstaller{}
	clk := newFakeClock()
	c := itrConfig(ms.Addr())
	c.ProbeInterval = time.Second
	c.ProbeMisses = 1
	c.ProbePort = rl.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	itr := newEngineWith(t, Config{ITR: c}, inst, slowpath.Options{Clock: clk.Now})
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })

	// round moves the clock to the next probe round and returns the
	// nonce of the probe the RLOC receives.
	round := func() wire.Nonce {
		t.Helper()
		clk.Add(c.ProbeInterval)
		if err := itr.c.Tick(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		rl.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rl.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var req wire.MapRequest
		if err := req.Parse(buf[:n]); err != nil || !req.Probe {
			t.Fatalf("probe %+v: %v", req, err)
		}
		return req.Nonce
	}
	ignored := func() uint64 { return itr.Stats().Msg(wire.TypeMapReply).Ignored }
	pbit := true // the reply's P bit
	// reply sends a probe reply from from; probed, when valid, is the
	// locator it marks with the p bit.
	reply := func(from *net.UDPConn, n wire.Nonce, probed netip.Addr) {
		t.Helper()
		rec := wire.Record{MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0")),
			Locators: []wire.Locator{{Address: wire.IPAddress(lo4), Priority: 1, Weight: 100, Reachable: true}}}
		switch {
		case probed == lo4:
			rec.Locators[0].Probed = true
		case probed.IsValid():
			rec.Locators = append(rec.Locators, wire.Locator{Address: wire.IPAddress(probed), Priority: 2, Weight: 100, Reachable: true, Probed: true})
		}
		rep := wire.MapReply{Probe: pbit, Nonce: n, Records: []wire.Record{rec}}
		b, err := rep.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := from.WriteToUDPAddrPort(b, itr.Addr()); err != nil {
			t.Fatal(err)
		}
	}

	n1 := round()
	base := ignored()
	var none netip.Addr
	reply(other, n1, none)                          // the right nonce from another address
	reply(rl, n1, netip.MustParseAddr("192.0.2.9")) // from the RLOC, for another RLOC
	wrong := n1
	wrong[0] ^= 0xff
	reply(rl, wrong, none) // the probed RLOC with a wrong nonce
	pbit = false
	reply(rl, n1, lo4) // right nonce, from and marking the RLOC, but no P bit: not a probe reply
	pbit = true
	waitFor(t, 5*time.Second, "four ignored replies", func() bool { return ignored() >= base+4 })

	n2 := round()
	waitFor(t, 5*time.Second, "RLOC down", func() bool { return len(inst.reaches()) == 1 })
	if r := inst.reaches()[0]; r.up || r.rloc != lo4 {
		t.Fatalf("reach change %+v", r)
	}
	reply(rl, n1, lo4) // late: the first probe's round is over
	waitFor(t, 5*time.Second, "late reply ignored", func() bool { return ignored() >= base+5 })
	if r := inst.reaches(); len(r) != 1 || itr.Stats().RLOCUp != 0 {
		t.Fatalf("a late reply changed reachability: %+v", r)
	}
	reply(other, n2, lo4) // marks the probed RLOC: counts from any address
	waitFor(t, 5*time.Second, "RLOC up", func() bool { return len(inst.reaches()) == 2 })
	if r := inst.reaches()[1]; !r.up || r.rloc != lo4 {
		t.Fatalf("reach change %+v", r)
	}
	if st := itr.Stats(); st.RLOCDown != 1 || st.RLOCUp != 1 {
		t.Fatalf("down %d up %d", st.RLOCDown, st.RLOCUp)
	}
}
