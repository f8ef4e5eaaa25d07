package e2e

import (
	"crypto/rand"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/wire"
)

// floodECM builds an ECM Map-Request from the attacker (ITR-RLOC
// 192.0.2.3, inner source port sport) for eid.
func floodECM(t *testing.T, eid netip.Addr, sport uint16) []byte {
	t.Helper()
	var nonce wire.Nonce
	_, _ = rand.Read(nonce[:])
	self := netip.MustParseAddr("192.0.2.3")
	req := wire.MapRequest{Nonce: nonce, ITRRLOCs: []wire.Address{wire.IPAddress(self)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(eid)}}}
	msg, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	ecm := wire.ECM{Src: self, Dst: eid, SrcPort: sport, DstPort: wire.ControlPort, TTL: 64, Message: msg}
	b, err := ecm.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFlood: from one source (the pxtr node, no rlocd there), 20k
// Map-Registers with a wrong key, 20k ECM Map-Requests and 400 malformed
// datagrams, paced over about 4 s, hit the Map-Server/Map-Resolver while
// xtr2 keeps registering (registrations time out after 3 s, so they only
// survive if its registers keep being accepted) and xtr1 keeps resolving
// new mappings (its map-cache entries are deleted each round). The good
// peers are served, the flood is rate-limited and counted, msmr lives.
func TestFlood(t *testing.T) {
	n := newNetwork(t)
	n.start("msmr", msmrYAML("3s"))
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))
	n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })

	const each, junkN = 20000, 400
	var conn *net.UDPConn
	if err := n.lab.Node("pxtr").Do(func() (err error) {
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.100:4342")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sport := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	bad := badRegister(t, "wrong-key")
	var reqs, junk [][]byte
	for i := range 64 {
		// Registered EIDs (forwarded to xtr2) and unregistered ones
		// (negative replies from msmr).
		eid := netip.AddrFrom4([4]byte{10, 2, 0, byte(i)})
		if i%2 == 1 {
			eid = netip.AddrFrom4([4]byte{10, 99, 0, byte(i)})
		}
		reqs = append(reqs, floodECM(t, eid, sport))
	}
	for i := range junkN {
		b := make([]byte, 1+i%200)
		_, _ = rand.Read(b)
		if i%4 == 0 {
			b[0] = 0x30 // a Map-Register type with garbage behind it
		}
		junk = append(junk, b)
	}
	before := n.stats("msmr")
	notified := n.stats("xtr2").Control["register_notified"]
	res1 := n.stats("xtr1").Control["resolutions"]

	// The flood: 100 messages every 10 ms for 400 ticks (about 4 s).
	floodDone := make(chan int, 1)
	go func() {
		sent := 0
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		deadline := time.Now().Add(8 * time.Second) // bound even on a slow machine
		for tick := 0; tick < 2*each/100 && time.Now().Before(deadline); tick++ {
			<-tk.C
			for i := range 50 {
				if _, err := conn.Write(bad); err == nil {
					sent++
				}
				if _, err := conn.Write(reqs[(tick*50+i)%len(reqs)]); err == nil {
					sent++
				}
			}
			if _, err := conn.Write(junk[tick%junkN]); err == nil {
				sent++
			}
		}
		floodDone <- sent
	}()

	// Meanwhile xtr1 resolves afresh every round: its entries for site 2
	// are deleted, and pings (IPv4 and IPv6) must all come back.
	floodStart := time.Now()
	rounds, lost := 0, 0
	var sent int
	for done := false; !done; {
		select {
		case sent = <-floodDone:
			done = true
		default:
		}
		for _, eid := range []string{"10.2.0.0/24", "2001:db8:2::/64"} {
			var out map[string]int
			_ = n.do("xtr1", "DELETE", "/v1/map-cache?iid=0&eid="+eid, nil, &out)
		}
		for _, dst := range []netip.Addr{h2v4, h2v6} {
			got, err := n.lab.Ping("h1", dst, 2, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			lost += 2 - got
		}
		rounds++
		// The ITR asks for one EID at most once a second; leave room for one
		// retransmission (1 s) when the flood made msmr's socket drop a request.
		time.Sleep(time.Until(floodStart.Add(time.Duration(rounds) * 1500 * time.Millisecond)))
	}
	floodTime := time.Since(floodStart)
	t.Logf("flood: %d datagrams in %v; %d resolution rounds by xtr1", sent, floodTime.Round(time.Millisecond), rounds)
	if sent < 2*each {
		t.Errorf("only %d of %d flood datagrams were sent", sent, 2*each+junkN)
	}
	if lost > 0 {
		t.Errorf("xtr1: %d of %d pings lost during the flood", lost, rounds*4)
	}
	if got := n.stats("xtr1").Control["resolutions"] - res1; got < uint64(2*rounds) {
		t.Errorf("xtr1 resolved %d times in %d rounds, want >= %d", got, rounds, 2*rounds)
	}
	// xtr2 kept registering: notified during the flood, and its
	// registrations (3 s timeout) are alive and fresh.
	if got := n.stats("xtr2").Control["register_notified"] - notified; got < uint64(floodTime/time.Second)-1 {
		t.Errorf("xtr2 got %d Map-Notifies during a %v flood (registers every 1 s)", got, floodTime)
	}
	site2 := 0
	for _, r := range n.registrations() {
		if slices.Contains(r.RLOCs, "192.0.2.66") {
			t.Errorf("a Map-Register with a wrong key was stored: %+v", r)
		}
		if r.Site == "site2" {
			site2++
		}
	}
	if site2 != 2 {
		t.Errorf("site2 has %d registrations after the flood, want 2", site2)
	}
	// Rate limiting and drops are counted; msmr still runs.
	rateLimited := func(st router.Stats) uint64 { return sum(st, func(m router.MsgCount) uint64 { return m.RateLimited }) }
	n.waitFor(3*time.Second, "msmr to count the flood as rate-limited", func() bool {
		return rateLimited(n.stats("msmr"))-rateLimited(before) >= each
	})
	st := n.stats("msmr")
	received := func(st router.Stats) uint64 { return sum(st, func(m router.MsgCount) uint64 { return m.Received }) }
	rl := rateLimited(st) - rateLimited(before)
	badAuth := msgCount(st, "map-register").BadAuth - msgCount(before, "map-register").BadAuth
	short := st.Control["short"] - before.Control["short"]
	through := received(st) - received(before)
	t.Logf("msmr: rate-limited %d, bad-auth %d, short %d, passed the limiter %d; messages %+v",
		rl, badAuth, short, through, st.Messages)
	if badAuth == 0 {
		t.Errorf("no bad-auth Map-Register counted")
	}
	// What the limiter let through is bounded by the source's buckets (the
	// harness gives each of the three classes 200/s and a burst of 50) over
	// the flood's duration, plus the good peers' messages and the backlog
	// the socket held when the flood ended.
	if limit := uint64(3*200*(floodTime+3*time.Second).Seconds()) + 3*50 + 200; through > limit {
		t.Errorf("%d messages passed the rate limiter in %v, want <= %d", through, floodTime, limit)
	}
	if p := n.procs["msmr"]; p == nil {
		t.Fatal("msmr gone")
	} else {
		select {
		case <-p.Done():
			t.Fatalf("msmr exited: %v", p.Wait())
		default:
		}
	}
}

func sum(st router.Stats, f func(router.MsgCount) uint64) uint64 {
	var s uint64
	for _, m := range st.Messages {
		s += f(m)
	}
	return s
}
