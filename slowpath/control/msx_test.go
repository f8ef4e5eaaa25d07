package control

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

var msxKey = AuthKey{KeyID: 7, Alg: wire.AuthHMACSHA256128, Secret: "interconnect"}

// msxProvider starts a Map-Server (domain 2) serving its registrations to
// any peer on loopback under agreement "d1", and registers n /26s of
// 10.0.0.0/10 (proxy-reply) in process.
func msxProvider(t testing.TB, clk *fakeClock, n int, listen netip.AddrPort, mod func(*slowpath.MSXAgreement)) *Engine {
	t.Helper()
	site := siteConfig("s2", "10.0.0.0/8", true)
	site.Names = []slowpath.SiteName{{Name: "*.d2.example"}, {IID: 5, Name: "*.d2.example"}} // msx_names_test.go
	c := msConfig(site)
	c.RateLimit = RateLimitConfig{Off: true}
	c.MapServer.RegistrationTimeout = 24 * time.Hour
	c.MapServer.Limits = RegistrationLimits{PrefixesPerSite: 200000, Registrations: 400000}
	c.Logger = slog.New(slog.DiscardHandler)
	if listen.IsValid() {
		c.Listen = []netip.AddrPort{listen}
	}
	ag := slowpath.MSXAgreement{Name: "d1", Peers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}, Key: msxKey, Mode: slowpath.MSXModeNone}
	if mod != nil {
		mod(&ag)
	}
	c.MSX = &slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{ag}, PageBytes: 9000}
	p := newEngineWith(t, c, nil, slowpathOptions(clk))
	msxRegister(t, p, 0, n, 1440, 1)
	return p
}

// msxRegister registers benchRecord(from..to-1) with TTL ttl and the last
// RLOC byte rloc, in process (255 records per Map-Register).
func msxRegister(t testing.TB, p *Engine, from, to int, ttl uint32, rloc byte) {
	t.Helper()
	var recs []wire.Record
	for j := from; j < to; j++ {
		r := benchRecord(j)
		r.TTL = ttl
		r.Locators[0].Address = wire.IPAddress(netip.AddrFrom4([4]byte{192, 0, 2, rloc}))
		recs = append(recs, r)
	}
	msxRegisterRecords(t, p, recs)
}

// msxRegisterRecords registers recs (proxy-reply) in process, 255 records
// per Map-Register.
func msxRegisterRecords(t testing.TB, p *Engine, recs []wire.Record) {
	t.Helper()
	src := netip.MustParseAddrPort("127.0.0.1:9")
	var msgs [][]byte
	for i := 0; i < len(recs); i += 255 {
		reg := wire.MapRegister{ProxyReply: true, Nonce: newNonce(), Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false)}
		reg.Records = recs[i:min(i+255, len(recs))]
		m, err := reg.AppendSigned(nil, []byte(testKey.Secret))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	p.do(func() {
		for _, m := range msgs {
			p.c.Dispatch(src, m)
		}
		p.c.Flush()
	})
}

// msxRequester starts a Map-Resolver (domain 1) holding a copy of the
// provider at peer.
func msxRequester(t testing.TB, clk *fakeClock, peer netip.AddrPort, mod func(*slowpath.MSXAgreement)) *Engine {
	t.Helper()
	return msxRequesterWith(t, clk, Config{MapResolver: &MapResolverConfig{}}, peer, mod)
}

// msxRequesterWith is msxRequester on the roles of c.
func msxRequesterWith(t testing.TB, clk *fakeClock, c Config, peer netip.AddrPort, mod func(*slowpath.MSXAgreement)) *Engine {
	t.Helper()
	c.RateLimit = RateLimitConfig{Off: true}
	ag := slowpath.MSXAgreement{Name: "d2", Peers: []netip.AddrPort{peer}, Key: msxKey, Mode: slowpath.MSXModeCopy}
	if mod != nil {
		mod(&ag)
	}
	c.MSX = &slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{ag}, PageBytes: 9000}
	c.Logger = slog.New(slog.DiscardHandler)
	return newEngineWith(t, c, nil, slowpathOptions(clk))
}

func msxAgreement(t testing.TB, e *Engine) MSXAgreement {
	t.Helper()
	ags, ok := e.MSXAgreements()
	if !ok || len(ags) != 1 {
		t.Fatalf("agreements %v %v", ags, ok)
	}
	return ags[0]
}

// msxSame compares the requester's copy with the provider's table, record
// by record.
func msxSame(t testing.TB, p, r *Engine, name string) int {
	t.Helper()
	cp, _ := r.MSXCopy(name)
	want := map[EIDPrefix][]byte{}
	p.do(func() {
		p.ms.EachMapping(func(k EIDPrefix) {
			rec, _ := p.ms.Mapping(k)
			b, _ := rec.Append(nil)
			want[k] = b
		})
	})
	if len(cp) != len(want) {
		t.Fatalf("copy holds %d mappings, the provider %d", len(cp), len(want))
	}
	for k, b := range want {
		if !bytes.Equal(cp[k], b) {
			t.Fatalf("%v: copy %x, provider %x", k, cp[k], b)
		}
	}
	return len(cp)
}

// relay forwards datagrams between a requester and a provider over real
// UDP; drop decides, for each datagram from the provider (its index
// counting from 1), whether it is lost.
type relay struct {
	conn     *net.UDPConn // the requester talks to this
	up       *net.UDPConn // this talks to the provider
	provider netip.AddrPort
	client   atomic.Pointer[netip.AddrPort]
	fromProv atomic.Int64
	dropped  chan int
	drop     func(n int64, b []byte) bool
	wg       sync.WaitGroup
}

func newRelay(t *testing.T, provider netip.AddrPort, drop func(n int64, b []byte) bool) *relay {
	t.Helper()
	a, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{conn: a, up: b, provider: provider, drop: drop, dropped: make(chan int, 16)}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, src, err := a.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.client.Store(&src)
			b.WriteToUDPAddrPort(buf[:n], provider)
		}
	}()
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := b.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			k := r.fromProv.Add(1)
			if r.drop != nil && r.drop(k, buf[:n]) {
				select {
				case r.dropped <- int(k):
				default:
				}
				continue
			}
			if c := r.client.Load(); c != nil {
				a.WriteToUDPAddrPort(buf[:n], *c)
			}
		}
	}()
	t.Cleanup(func() { a.Close(); b.Close(); r.wg.Wait() })
	return r
}

func (r *relay) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// msxWaitDrop waits until the relay dropped a datagram.
func msxWaitDrop(t *testing.T, rl *relay, p, r *Engine) {
	t.Helper()
	select {
	case <-rl.dropped:
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing dropped; provider %+v %+v\nrequester %+v %+v", msxAgreement(t, p), p.Stats().Msgs[15], msxAgreement(t, r), r.Stats().Msgs[15])
	}
}

func isBulkReply(b []byte) bool {
	st, err := wire.PeekSharedSubType(b)
	return err == nil && st == wire.SubTypeMapBulkReply
}

// TestMSXBulk100k: 100k mappings pulled completely over loopback, in
// pages, identical record by record; a lost page is asked again and the
// provider sends it again for the same nonce.
func TestMSXBulk100k(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, benchPrefixes, netip.AddrPort{}, nil)
	pages := 0
	rl := newRelay(t, p.Addr(), func(n int64, b []byte) bool {
		if !isBulkReply(b) {
			return false
		}
		pages++
		return pages == 3
	})
	r := msxRequester(t, clk, rl.addr(), nil)
	msxWaitDrop(t, rl, p, r)
	clk.Add(1500 * time.Millisecond)
	if err := r.Core().Tick(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })
	if n := msxSame(t, p, r, "d2"); n != benchPrefixes {
		t.Fatalf("%d mappings", n)
	}
	ra, pa := msxAgreement(t, r), msxAgreement(t, p)
	if ra.Stats.PageRetransmits < 1 || pa.Stats.BulkResent < 1 || ra.Stats.PullsDone != 1 || ra.Copy != benchPrefixes {
		t.Fatalf("requester %+v\nprovider %+v", ra.Stats, pa.Stats)
	}
	t.Logf("%d pages, %d records; provider %d pages", ra.Stats.PagesIn, ra.Stats.RecordsIn, pa.Stats.BulkPages)
}

// TestMSXRequesterRestart: a requester stopped in the middle of a pull;
// the one started in its place pulls the whole table and ends identical,
// and the provider's state from the first stays bounded.
func TestMSXRequesterRestart(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 20000, netip.AddrPort{}, nil)
	pages := 0
	rl := newRelay(t, p.Addr(), func(n int64, b []byte) bool {
		if isBulkReply(b) {
			pages++
		}
		return pages >= 10
	})
	r1 := msxRequester(t, clk, rl.addr(), nil)
	msxWaitDrop(t, rl, p, r1)
	a1 := msxAgreement(t, r1)
	if a1.Complete || a1.Copy == 0 || a1.Copy >= 20000 {
		t.Fatalf("first requester: %+v", a1)
	}
	r1.Close()
	r2 := msxRequester(t, clk, p.Addr(), nil)
	waitFor(t, 30*time.Second, "complete copy", func() bool { return msxAgreement(t, r2).Complete })
	msxSame(t, p, r2, "d2")
	if pa := msxAgreement(t, p); pa.SubscribedBy != 2 {
		t.Fatalf("provider holds %d subscriptions", pa.SubscribedBy)
	}
}

// msxAsk sends a plain Map-Request for eid to e and returns the answer's
// first record (nil: none within a second).
func msxAsk(t *testing.T, e *Engine, eid string) *wire.Record {
	t.Helper()
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a := netip.MustParseAddr(eid)
	req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(a)}}}
	b, _ := req.Append(nil)
	if _, err := cl.WriteToUDPAddrPort(b, e.Addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9000)
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := cl.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil
	}
	var rep wire.MapReply
	if err := rep.Parse(buf[:n]); err != nil || len(rep.Records) == 0 {
		t.Fatalf("answer: %v", err)
	}
	return &rep.Records[0]
}

func rlocOf(r *wire.Record) netip.Addr {
	if r == nil || len(r.Locators) == 0 {
		return netip.Addr{}
	}
	return r.Locators[0].Address.IP
}

// TestMSXSubscription: a registration, an RLOC change and a withdrawal on
// the provider reach the requester's copy by notification; a lost
// notification is sent again until acknowledged; a provider restart leads
// to a new subscription and a resync by bulk; the requester answers
// Map-Requests for the peer's EIDs from its copy with the owner's TTL; a
// silent peer's copy ages out.
func TestMSXSubscription(t *testing.T) {
	clk := newFakeClock()
	pl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	paddr := pl.LocalAddr().(*net.UDPAddr).AddrPort()
	pl.Close()
	p := msxProvider(t, clk, 100, paddr, nil)
	var dropNotify atomic.Bool
	rl := newRelay(t, p.Addr(), func(n int64, b []byte) bool {
		typ, _ := wire.PeekType(b)
		return typ == wire.TypeMapNotify && dropNotify.CompareAndSwap(true, false)
	})
	r := msxRequester(t, clk, rl.addr(), func(a *slowpath.MSXAgreement) {
		a.PeerPrefixes = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
	})
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })
	msxSame(t, p, r, "d2")

	// Answered from the copy, with the owner's TTL.
	got := msxAsk(t, r, "10.0.0.5")
	if got == nil || got.TTL != 1440 || rlocOf(got) != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("answer %+v", got)
	}

	// A new registration, an RLOC change, a withdrawal.
	notified := func(what string, n uint64) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool { return msxAgreement(t, r).Stats.NotifiesIn >= n })
		msxSame(t, p, r, "d2")
	}
	msxRegister(t, p, 100, 101, 1440, 1)
	notified("registration", 1)
	msxRegister(t, p, 5, 6, 1440, 9)
	notified("RLOC change", 2)
	if got := msxAsk(t, r, "10.0.1.77"); rlocOf(got) != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("after the RLOC change: %+v", got)
	}
	msxRegister(t, p, 7, 8, 0, 1)
	notified("withdrawal", 3)

	// A lost notification is sent again until acknowledged.
	dropNotify.Store(true)
	msxRegister(t, p, 8, 9, 1440, 5)
	msxWaitDrop(t, rl, p, r)
	clk.Add(1500 * time.Millisecond)
	p.Core().Tick()
	notified("retransmitted notification", 4)
	// The requester's Ack is still on its way when the notification is
	// counted: wait for the provider to take it.
	waitFor(t, 10*time.Second, "the provider's fourth Ack", func() bool { return msxAgreement(t, p).Stats.NotifyAcked >= 4 })
	if pa := msxAgreement(t, p); pa.Stats.NotifyRetransmits < 1 {
		t.Fatalf("provider %+v", pa.Stats)
	}

	// The provider restarts with another table: the renewal finds the
	// subscription unknown, the requester subscribes again and resyncs.
	p.Close()
	p2 := msxProvider(t, clk, 50, paddr, nil)
	clk.Add(25 * time.Second) // past a third of the 60 s lifetime
	r.Core().Tick()
	waitFor(t, 10*time.Second, "resync", func() bool {
		a := msxAgreement(t, r)
		return a.Stats.Resubscribes == 1 && a.Stats.PullsDone == 2 && a.Copy == 50
	})
	msxSame(t, p2, r, "d2")

	// The peer goes silent: the copy ages out after peer_timeout (180 s),
	// and the EID is answered negatively.
	p2.Close()
	for range 12 {
		clk.Add(20 * time.Second)
		r.Core().Tick()
	}
	a := msxAgreement(t, r)
	if a.Copy != 0 || a.Stats.AgedOut != 1 {
		t.Fatalf("after the silence: %+v", a)
	}
	// The peer's EID space stays known: asked again soon, not forwarded
	// natively.
	if got := msxAsk(t, r, "10.0.0.5"); got == nil || len(got.Locators) != 0 || got.Action != wire.ActionSendMapRequest {
		t.Fatalf("aged copy answered %+v", got)
	}
}

// TestMSXInvoke: in invoke mode a Map-Request for the peer's EIDs goes
// straight to the peer's Map-Server, which answers the ITR.
func TestMSXInvoke(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 10, netip.AddrPort{}, nil)
	r := msxRequester(t, clk, p.Addr(), func(a *slowpath.MSXAgreement) {
		a.Mode = slowpath.MSXModeInvoke
		a.PeerPrefixes = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
	})
	got := msxAsk(t, r, "10.0.0.5")
	if rlocOf(got) != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("answer %+v", got)
	}
	if a := msxAgreement(t, r); a.Stats.Invoked != 1 || a.Copy != 0 {
		t.Fatalf("%+v", a.Stats)
	}
}

// TestMSXInvokeRefused: the provider takes a peer's invocation only when
// the agreement allows it and for EIDs inside the agreement's filters;
// the others are dropped unanswered and counted.
func TestMSXInvokeRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allow   []string
		eid     string
		answers bool
		want    func(s MSXStats) uint64
	}{
		{"allowed", []string{slowpath.MSXInvocation}, "10.0.1.77", true, func(s MSXStats) uint64 { return s.InvokedBy }},
		{"not allowed", []string{slowpath.MSXSubscribe, slowpath.MSXBulk}, "10.0.1.77", false, func(s MSXStats) uint64 { return s.InvokeDenied }},
		{"outside the filters", nil, "10.0.0.5", false, func(s MSXStats) uint64 { return s.InvokeOutOfScope }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			p := msxProvider(t, clk, 10, netip.AddrPort{}, func(a *slowpath.MSXAgreement) {
				a.Allow = tc.allow
				a.Filters = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.1.0/24")}}
			})
			r := msxRequester(t, clk, p.Addr(), func(a *slowpath.MSXAgreement) {
				a.Mode = slowpath.MSXModeInvoke
				a.PeerPrefixes = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
			})
			if got := msxAsk(t, r, tc.eid); (got != nil) != tc.answers {
				t.Fatalf("answer %+v, want one: %v", got, tc.answers)
			}
			// The provider counts the invocation when it takes it: wait
			// for it when no answer says it happened.
			waitFor(t, 5*time.Second, "the provider's count", func() bool { return tc.want(msxAgreement(t, p).Stats) == 1 })
			if s := msxAgreement(t, p).Stats; s.InvokedBy+s.InvokeDenied+s.InvokeOutOfScope != 1 {
				t.Fatalf("provider %+v", s)
			}
		})
	}
}

// TestMSXInvokeAuth: the provider takes an invocation only in a Map-Invoke
// from the agreement's peer signed with the agreement's key, with a fresh
// timestamp and a nonce not seen before; a plain ECM, the wrong key, a
// replay, a stale timestamp and a Map-Invoke from outside every agreement
// are dropped unanswered and counted (fake clock).
func TestMSXInvokeAuth(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 10, netip.AddrPort{}, nil)
	client := func(local string) *net.UDPConn {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	peer, other := client("127.0.0.1:0"), client("127.0.0.2:0")
	// ecm is an ITR's Map-Request for 10.0.0.5 as a Map-Resolver at c
	// forwards it, the answer going back to c.
	ecm := func(c *net.UDPConn) []byte {
		req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.0.0.5"))}}}
		m, _ := req.Append(nil)
		src := c.LocalAddr().(*net.UDPAddr).AddrPort()
		b, err := (&wire.ECM{ToMapServer: true, Src: src.Addr(), Dst: netip.MustParseAddr("10.0.0.5"), SrcPort: src.Port(), DstPort: wire.ControlPort, TTL: 64, Message: m}).Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	invoke := func(c *net.UDPConn, at time.Time, key string) []byte {
		inv := wire.MapInvoke{Nonce: newNonce(), Auth: wire.NewAuth(msxKey.KeyID, msxKey.Alg, false), Time: uint64(at.Unix()), ECM: ecm(c)}
		b, err := inv.Append(nil)
		if err == nil {
			err = wire.SignSubscription(b, []byte(key))
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// send sends b from c and reports whether an answer came; once the
	// provider counted b its handler has run and an answer, if any, is
	// queued here (loopback).
	send := func(c *net.UDPConn, b []byte) bool {
		t.Helper()
		st := p.Stats().Msgs
		before := st[wire.TypeSharedExtension].Received + st[wire.TypeECM].Received
		if _, err := c.WriteToUDPAddrPort(b, p.Addr()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "handled", func() bool {
			st := p.Stats().Msgs
			return st[wire.TypeSharedExtension].Received+st[wire.TypeECM].Received > before
		})
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 2048)
		n, _, err := c.ReadFromUDPAddrPort(buf)
		var rep wire.MapReply
		return err == nil && rep.Parse(buf[:n]) == nil && len(rep.Records) == 1 && len(rep.Records[0].Locators) == 1
	}
	if send(peer, ecm(peer)) {
		t.Fatal("plain ECM from the peer answered")
	}
	if send(peer, invoke(peer, clk.Now(), "wrong")) {
		t.Fatal("Map-Invoke with the wrong key answered")
	}
	good := invoke(peer, clk.Now(), msxKey.Secret)
	if !send(peer, good) {
		t.Fatal("signed Map-Invoke not answered")
	}
	if send(peer, good) {
		t.Fatal("replayed Map-Invoke answered")
	}
	if send(peer, invoke(peer, clk.Now().Add(-31*time.Second), msxKey.Secret)) || send(peer, invoke(peer, clk.Now().Add(31*time.Second), msxKey.Secret)) {
		t.Fatal("stale Map-Invoke answered")
	}
	// Past the window the replay is stale (its nonce may be forgotten).
	clk.Add(time.Minute)
	if send(peer, good) {
		t.Fatal("old Map-Invoke answered")
	}
	if !send(peer, invoke(peer, clk.Now().Add(29*time.Second), msxKey.Secret)) {
		t.Fatal("Map-Invoke within the window not answered")
	}
	// A Map-Invoke from outside every agreement.
	if send(other, invoke(other, clk.Now(), msxKey.Secret)) {
		t.Fatal("Map-Invoke from outside the agreements answered")
	}
	s := msxAgreement(t, p).Stats
	if s.InvokeUnauthenticated != 2 || s.InvokeReplayed != 1 || s.InvokeStale != 3 || s.InvokedBy != 2 {
		t.Fatalf("%+v", s)
	}
	if r := p.Stats().Msgs[wire.TypeSharedExtension].Rejected; r != 6 {
		t.Fatalf("%d type-15 messages rejected, want 6", r)
	}
}

// TestMSXInvokeFailover: in invoke mode the ITR's retransmission of a
// Map-Request (same source, same nonce) goes to the next Map-Server of the
// covering agreements, across agreements; an agreement then starts at the
// peer after the silent one; when every candidate had its try the request
// gets the Map-Resolver's negative reply (counted); past the window a
// repeat is a new request (fake clock).
func TestMSXInvokeFailover(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 10, netip.AddrPort{}, nil)
	sink := func() *fakeSubscriber { return newFakeSubscriber(t) } // silent Map-Servers
	dead1, dead2 := sink(), sink()
	ag := func(name string, peers ...netip.AddrPort) slowpath.MSXAgreement {
		return slowpath.MSXAgreement{Name: name, Peers: peers, Key: msxKey, Mode: slowpath.MSXModeInvoke,
			PeerPrefixes: []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}
	}
	c := Config{MapResolver: &MapResolverConfig{}, RateLimit: RateLimitConfig{Off: true}, Logger: slog.New(slog.DiscardHandler),
		MSX: &slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{ag("a", dead1.addr()), ag("b", dead2.addr(), p.Addr())}}}
	r := newEngineWith(t, c, nil, slowpathOptions(clk))
	stats := func() (a, b MSXStats) {
		l, _ := r.MSXAgreements()
		return l[0].Stats, l[1].Stats
	}

	cl := newFakeSubscriber(t)
	ask := func(nonce uint64) {
		t.Helper()
		req := wire.MapRequest{ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.0.1.77"))}}}
		binary.BigEndian.PutUint64(req.Nonce[:], nonce)
		b, _ := req.Append(nil)
		if _, err := cl.conn.WriteToUDPAddrPort(b, r.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	// forwarded reads an invocation: an ECM in a Map-Invoke signed with
	// the agreement's key.
	forwarded := func(to *fakeSubscriber) {
		t.Helper()
		b, _ := to.read()
		var inv wire.MapInvoke
		if err := inv.Parse(b); err != nil || wire.VerifySubscription(b, []byte(msxKey.Secret)) != nil {
			t.Fatalf("not a signed Map-Invoke (%v): %x", err, b)
		}
		var ecm wire.ECM
		if err := ecm.Parse(inv.ECM); err != nil || !ecm.ToMapServer {
			t.Fatalf("not an ECM to a Map-Server (%v): %x", err, inv.ECM)
		}
	}
	// answer reads the client's answer: true when positive.
	answer := func() bool {
		t.Helper()
		cl.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		n, _, err := cl.conn.ReadFromUDPAddrPort(buf)
		var rep wire.MapReply
		if err != nil || rep.Parse(buf[:n]) != nil || len(rep.Records) != 1 {
			t.Fatalf("answer: %v", err)
		}
		return len(rep.Records[0].Locators) > 0
	}

	// a's peer, then (retransmitted) b's first, then b's second answers.
	ask(1)
	forwarded(dead1)
	ask(1)
	forwarded(dead2)
	ask(1)
	if !answer() {
		t.Fatal("the third candidate's answer is negative")
	}
	if a, b := stats(); a.Invoked != 1 || a.InvokeFailovers != 1 || b.Invoked != 2 || b.InvokeFailovers != 1 {
		t.Fatalf("a %+v, b %+v", a, b)
	}
	// A new request: a's one peer first, then b's peer that answered.
	ask(2)
	forwarded(dead1)
	ask(2)
	if !answer() {
		t.Fatal("b's answering peer was not asked first")
	}
	// Every candidate silent: the resolver's negative reply, once counted.
	p.Close()
	ask(3)
	forwarded(dead1)
	ask(3) // b's second (closed)
	ask(3)
	forwarded(dead2)
	ask(3)
	if answer() {
		t.Fatal("positive answer with every candidate silent")
	}
	ask(3)
	if answer() {
		t.Fatal("positive answer after giving up")
	}
	if a, b := stats(); a.InvokeGaveUp != 1 || a.Invoked != 3 || a.InvokeFailovers != 3 || b.Invoked != 5 || b.InvokeFailovers != 3 {
		t.Fatalf("a %+v, b %+v", a, b)
	}
	// Past the window the same nonce is a new request.
	clk.Add(31 * time.Second)
	ask(3)
	forwarded(dead1)
	if a, _ := stats(); a.Invoked != 4 || a.InvokeGaveUp != 1 {
		t.Fatalf("a %+v", a)
	}
	// The agreement asked is removed at run time before the ITR asks
	// again: the retransmission is a new request to what is left (b
	// starts at its closed peer, then dead2).
	ask(5)
	forwarded(dead1)
	if err := r.do(func() { r.msx.RemoveAgreement("a") }); err != nil {
		t.Fatal(err)
	}
	ask(5)
	ask(5)
	forwarded(dead2)
	if l, _ := r.MSXAgreements(); len(l) != 1 || l[0].Stats.Invoked != 7 || l[0].Stats.InvokeFailovers != 4 {
		t.Fatalf("after the removal: %+v", l)
	}
}

// TestMSXBadInput: unauthenticated and out-of-agreement requests, scopes
// wider than the agreement, replayed cookies and floods are refused,
// bounded and counted.
func TestMSXBadInput(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 2000, netip.AddrPort{}, func(a *slowpath.MSXAgreement) {
		a.Filters = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/16")}}
		a.Rate, a.Burst = 1, 20
	})
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	buf := make([]byte, 65536)
	ask := func(req *wire.MapBulkRequest, key string) *wire.MapBulkReply {
		t.Helper()
		b, err := req.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			if err := wire.SignSubscription(b, []byte(key)); err != nil {
				t.Fatal(err)
			}
		}
		before := p.Stats().Msgs[wire.TypeSharedExtension].Received
		cl.WriteToUDPAddrPort(b, p.Addr())
		// Once the provider counted it, its handler has run and an answer,
		// if any, was sent: on loopback it is queued at this socket by
		// then, so the read below does not wait for it to be produced.
		waitFor(t, 5*time.Second, "request handled", func() bool {
			return p.Stats().Msgs[wire.TypeSharedExtension].Received > before
		})
		cl.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := cl.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		var rep wire.MapBulkReply
		if err := rep.Parse(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return &rep
	}
	signed := func(cookie []byte) *wire.MapBulkRequest {
		return &wire.MapBulkRequest{Nonce: newNonce(), All: true, Cookie: cookie, Auth: wire.NewAuth(7, wire.AuthHMACSHA256128, false)}
	}
	// Unauthenticated: none, or the wrong key. No answer.
	if ask(&wire.MapBulkRequest{Nonce: newNonce(), All: true}, "") != nil || ask(signed(nil), "wrong") != nil {
		t.Fatal("unauthenticated request answered")
	}
	// Everything asked, a part allowed: clipped to 10.0.0.0/16.
	first := ask(signed(nil), msxKey.Secret)
	if first == nil || !first.More {
		t.Fatalf("first page %+v", first)
	}
	for _, rec := range first.Records {
		_, pfx, _ := rec.Prefix()
		if !netip.MustParsePrefix("10.0.0.0/16").Contains(pfx.Addr()) {
			t.Fatalf("%v outside the agreement", pfx)
		}
	}
	// The cookie, used with one nonce, is refused with another (replay);
	// a tampered cookie is refused.
	req := signed(first.Cookie)
	if ask(req, msxKey.Secret) == nil {
		t.Fatal("next page not answered")
	}
	if ask(req, msxKey.Secret) == nil {
		t.Fatal("next page not sent again for the same nonce")
	}
	if ask(signed(first.Cookie), msxKey.Secret) != nil {
		t.Fatal("replayed cookie answered")
	}
	bad := bytes.Clone(first.Cookie)
	bad[5] ^= 1
	if ask(signed(bad), msxKey.Secret) != nil {
		t.Fatal("forged cookie answered")
	}
	// An expired cookie.
	second := ask(signed(nil), msxKey.Secret)
	clk.Add(time.Minute)
	if ask(signed(second.Cookie), msxKey.Secret) != nil {
		t.Fatal("expired cookie answered")
	}
	// A flood: the agreement's rate (burst 20, 1/s) refuses the rest.
	for range 40 {
		ask(signed(nil), msxKey.Secret)
	}
	s := msxAgreement(t, p).Stats
	if s.Unauthenticated != 2 || s.Clipped < 1 || s.CookieReplayed != 1 || s.CookieBad != 1 || s.CookieExpired != 1 ||
		s.RateLimited < 20 || s.BulkResent != 1 {
		t.Fatalf("%+v", s)
	}
	// A subscription from outside every agreement is dropped.
	other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")))
	if err != nil {
		t.Fatalf("bind 127.0.0.2 (all of 127/8 is loopback on Linux): %v", err)
	}
	defer other.Close()
	sub := wire.MapSubscribe{Nonce: newNonce(), All: true, Auth: wire.NewAuth(7, wire.AuthHMACSHA256128, false), Lifetime: 60}
	b, _ := sub.Append(nil)
	wire.SignSubscription(b, []byte(msxKey.Secret))
	other.WriteToUDPAddrPort(b, p.Addr())
	waitFor(t, 5*time.Second, "refused subscription", func() bool { return p.Stats().Msgs[15].Rejected > 0 })
	if a := msxAgreement(t, p); a.SubscribedBy != 0 {
		t.Fatalf("%d subscriptions", a.SubscribedBy)
	}
}

// BenchmarkMSXBulk: a requester pulls a 100k-mapping table over loopback
// (9000-byte pages), from its start to the complete copy; memory: the copy
// in memory only; state-file: kept in a state file as well (the timing
// holds the encoding of every mapping for the file on the event loop; the
// file is written behind, by its own goroutine and at Close, untimed).
func BenchmarkMSXBulk(b *testing.B) {
	clk := newFakeClock()
	p := msxProvider(b, clk, benchPrefixes, netip.AddrPort{}, nil)
	for _, bc := range []struct {
		name  string
		state bool
	}{{"memory", false}, {"state-file", true}} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				// The provider's rate bucket (burst 2000 pages) refills
				// with the fake clock only.
				clk.Add(time.Minute)
				c := Config{MapResolver: &MapResolverConfig{}}
				if bc.state {
					// A Map-Server beside, keeping the copy in a new file.
					c = msConfig(siteConfig("s1", "172.16.0.0/16", true))
					c.MapServer.StateFile = filepath.Join(b.TempDir(), "ms.db")
				}
				b.StartTimer()
				r := msxRequesterWith(b, clk, c, p.Addr(), nil)
				waitFor(b, time.Minute, "complete copy", func() bool { return msxAgreement(b, r).Complete })
				b.StopTimer()
				if a := msxAgreement(b, r); a.Copy != benchPrefixes {
					b.Fatalf("%d mappings", a.Copy)
				}
				r.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*benchPrefixes)/b.Elapsed().Seconds(), "mappings/s")
		})
	}
}

// TestMSXPullAbandoned: the provider falls silent in the middle of a pull;
// the page request gives up, and the next renewal starts the pull over,
// which completes once the provider answers again.
func TestMSXPullAbandoned(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 5000, netip.AddrPort{}, nil)
	var silent atomic.Bool
	pages := 0
	rl := newRelay(t, p.Addr(), func(n int64, b []byte) bool {
		if isBulkReply(b) {
			pages++
			if pages == 4 {
				silent.Store(true)
			}
		}
		return silent.Load()
	})
	r := msxRequester(t, clk, rl.addr(), nil)
	msxWaitDrop(t, rl, p, r)
	// Let the page request run out of tries (1+2+4+8+8 s), one step at a
	// time, each retransmission reaching the relay before the next.
	for i := range 6 {
		before := rl.fromProv.Load()
		clk.Add(9 * time.Second)
		r.Core().Tick()
		if i < 4 {
			waitFor(t, 5*time.Second, "retransmitted page answered (and dropped)", func() bool { return rl.fromProv.Load() > before })
		}
	}
	a := msxAgreement(t, r)
	if a.Complete || a.Pulling || a.Stats.PullRestarts != 1 {
		t.Fatalf("after the silence: %+v", a)
	}
	silent.Store(false)
	clk.Add(20 * time.Second) // the renewal
	r.Core().Tick()
	waitFor(t, 10*time.Second, "pull started over and completed", func() bool { return msxAgreement(t, r).Complete })
	msxSame(t, p, r, "d2")
}

// TestMSXSubscriptionBound: the provider holds at most max_subscriptions
// of a peer (then overloaded); a retransmitted Map-Subscribe gets the same
// subscription, not a second; an unknown renewal is answered
// unknown-subscription; a cancel frees the place.
func TestMSXSubscriptionBound(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 10, netip.AddrPort{}, func(a *slowpath.MSXAgreement) { a.MaxSubscriptions = 2 })
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	buf := make([]byte, 2048)
	subscribe := func(n wire.Nonce, id, lifetime uint32) wire.MapSubscribeAck {
		t.Helper()
		sub := wire.MapSubscribe{Nonce: n, All: true, Auth: wire.NewAuth(7, wire.AuthHMACSHA256128, false), SubscriptionID: id, Lifetime: lifetime}
		b, _ := sub.Append(nil)
		if err := wire.SignSubscription(b, []byte(msxKey.Secret)); err != nil {
			t.Fatal(err)
		}
		cl.WriteToUDPAddrPort(b, p.Addr())
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _, err := cl.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var ack wire.MapSubscribeAck
		if err := ack.Parse(buf[:k]); err != nil || wire.VerifySubscription(buf[:k], []byte(msxKey.Secret)) != nil || ack.Nonce != n {
			t.Fatalf("ack %+v: %v", ack, err)
		}
		return ack
	}
	n1 := newNonce()
	a1 := subscribe(n1, 0, 60)
	if again := subscribe(n1, 0, 60); again.SubscriptionID != a1.SubscriptionID || a1.Status != wire.SubscribeAccepted {
		t.Fatalf("retransmission: %+v then %+v", a1, again)
	}
	a2 := subscribe(newNonce(), 0, 60)
	if a3 := subscribe(newNonce(), 0, 60); a2.Status != wire.SubscribeAccepted || a3.Status != wire.SubscribeOverloaded {
		t.Fatalf("second %v, third %v", a2.Status, a3.Status)
	}
	if u := subscribe(newNonce(), 12345, 60); u.Status != wire.SubscribeUnknownID {
		t.Fatalf("unknown renewal: %v", u.Status)
	}
	if c := subscribe(newNonce(), a2.SubscriptionID, 0); c.Status != wire.SubscribeAccepted || c.Lifetime != 0 {
		t.Fatalf("cancel: %+v", c)
	}
	if a4 := subscribe(newNonce(), 0, 60); a4.Status != wire.SubscribeAccepted {
		t.Fatalf("after the cancel: %v", a4.Status)
	}
	s := msxAgreement(t, p)
	if s.SubscribedBy != 2 || s.Stats.Subscribed != 3 || s.Stats.Cancelled != 1 || s.Stats.SubUnknown != 1 || s.Stats.Overloaded != 1 {
		t.Fatalf("%+v", s)
	}
	// Lapsed: past the lifetime, the subscriptions are gone.
	clk.Add(61 * time.Second)
	p.Core().Tick()
	if s := msxAgreement(t, p); s.SubscribedBy != 0 || s.Stats.SubExpired != 2 {
		t.Fatalf("after the lifetime: %+v", s)
	}
}

// TestMSXPullPaced: the requester asks for pages no faster than the
// agreement's rate (the peer holds it to that rate too): after the burst
// it waits for the clock.
func TestMSXPullPaced(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 5000, netip.AddrPort{}, nil)
	r := msxRequester(t, clk, p.Addr(), func(a *slowpath.MSXAgreement) { a.Rate, a.Burst = 10, 5 })
	// The first page, then the burst of 5.
	waitFor(t, 10*time.Second, "the burst", func() bool { return msxAgreement(t, r).Stats.PagesIn == 6 })
	if a := msxAgreement(t, r); a.Complete || !a.Pulling {
		t.Fatalf("%+v", a)
	}
	for i := 0; i < 100 && !msxAgreement(t, r).Complete; i++ {
		clk.Add(100 * time.Millisecond)
		r.Core().Tick()
		waitFor(t, 10*time.Second, "the next page", func() bool {
			a := msxAgreement(t, r)
			return a.Complete || a.Stats.PagesIn >= uint64(7+i)
		})
	}
	msxSame(t, p, r, "d2")
}

// TestMSXCopySubscriber: an ITR subscribed (RFC 9437) at the requester's
// Map-Server to an EID that the copy answers is sent the copied mapping at
// once, then a signed Map-Notify for each change of it at the provider (an
// RLOC change, a withdrawal), retransmitted until acknowledged; changes of
// other mappings send it nothing; subscriptions to copied mappings count
// against the Map-Server's bounds.
func TestMSXCopySubscriber(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 10, netip.AddrPort{}, nil)
	c := msConfig(siteConfig("s1", "172.16.0.0/16", true))
	c.MapServer.PubSub = slowpath.PubSubConfig{Subscribers: []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}},
		NotifyInterval: time.Second, MaxTotal: 2}
	r := msxRequesterWith(t, clk, c, p.Addr(), nil)
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })

	sub := newFakeSubscriber(t)
	// next reads the subscriber's next Map-Notify: its nonce and record.
	next := func(what string) (wire.MapNotify, []byte, netip.AddrPort) {
		t.Helper()
		b, from := sub.read()
		var n wire.MapNotify
		if err := wire.VerifyMapNotify(b, []byte(testKey.Secret), &n); err != nil || len(n.Records) != 1 {
			t.Fatalf("%s: Map-Notify %+v, %v", what, n, err)
		}
		return n, b, from
	}
	ack := func(n wire.MapNotify, from netip.AddrPort) {
		t.Helper()
		a := wire.MapNotifyAck(n)
		a.Auth = wire.NewAuth(testKey.KeyID, testKey.Alg, false)
		b, err := a.AppendSigned(nil, []byte(testKey.Secret))
		if err != nil {
			t.Fatal(err)
		}
		inject(t, r, from, b)
	}
	nonceOf := func(n wire.MapNotify) uint64 { return binary.BigEndian.Uint64(n.Nonce[:]) }
	k5 := netip.MustParsePrefix("10.0.1.64/26") // benchPrefix(5)

	// The subscription is kept under the copied prefix and sent its
	// mapping at once.
	injectRequest(t, r, sub.addr(), xtrA, "10.0.1.77/32", 1000, false)
	n, _, from := next("first")
	if nonceOf(n) != 1000 || rlocOf(&n.Records[0]) != netip.MustParseAddr("192.0.2.1") || n.Records[0].TTL != 1440 {
		t.Fatalf("first Map-Notify: nonce %d, %+v", nonceOf(n), n.Records[0])
	}
	if subs := r.Subscriptions(); len(subs) != 1 || subs[0].EID.Prefix != k5 {
		t.Fatalf("subscriptions %+v", subs)
	}
	ack(n, from)

	// An RLOC change at the provider: notified to the copy, then to the
	// subscriber; unacknowledged, sent again.
	msxRegister(t, p, 5, 6, 1440, 9)
	n, b, from := next("RLOC change")
	if nonceOf(n) != 1001 || rlocOf(&n.Records[0]) != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("RLOC change: nonce %d, %+v", nonceOf(n), n.Records[0])
	}
	clk.Add(time.Second)
	_ = r.Core().Tick()
	if b2, _ := sub.read(); !bytes.Equal(b2, b) {
		t.Fatal("retransmission differs from the Map-Notify")
	}
	ack(n, from)
	if ps := r.PubSubStats(); ps.Acked != 2 || ps.Retransmits != 1 {
		t.Fatalf("after the RLOC change: %+v", ps)
	}

	// A change of another mapping sends it nothing; a withdrawal of its
	// own is a record without locators and TTL 0.
	msxRegister(t, p, 8, 9, 1440, 7)
	waitFor(t, 10*time.Second, "the other change in the copy", func() bool { return msxAgreement(t, r).Stats.NotifiesIn >= 2 })
	if ps := r.PubSubStats(); ps.Notifies != 2 {
		t.Fatalf("a change of another mapping notified: %+v", ps)
	}
	msxRegister(t, p, 5, 6, 0, 9)
	n, _, from = next("withdrawal")
	if nonceOf(n) != 1002 || n.Records[0].TTL != 0 || len(n.Records[0].Locators) != 0 {
		t.Fatalf("withdrawal: nonce %d, %+v", nonceOf(n), n.Records[0])
	}
	ack(n, from)

	// Bounded as any subscription: the second fits under MaxTotal 2, the
	// third is refused and counted.
	injectRequest(t, r, sub.addr(), xtrA, "10.0.2.1/32", 2000, false)
	next("second subscription")
	injectRequest(t, r, sub.addr(), xtrA, "10.0.2.65/32", 3000, false)
	if ps := r.PubSubStats(); ps.Active != 2 || ps.OverTotal != 1 {
		t.Fatalf("bounds: %+v", ps)
	}
}

// TestMSXCopyPersisted: with a state file, a restarted requester answers
// from the copy it kept at once, its peer silent, and resyncs by bulk once
// the peer answers: what changed meanwhile (a new mapping, a withdrawal)
// is right after the first pull, the copy identical to the provider's
// table.
func TestMSXCopyPersisted(t *testing.T) {
	clk := newFakeClock()
	p := msxProvider(t, clk, 100, netip.AddrPort{}, nil)
	state := filepath.Join(t.TempDir(), "ms.db")
	start := func(peer netip.AddrPort) *Engine {
		c := msConfig(siteConfig("s1", "172.16.0.0/16", true))
		c.MapServer.StateFile = state
		return msxRequesterWith(t, clk, c, peer, nil)
	}
	r := start(p.Addr())
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })
	msxSame(t, p, r, "d2")
	r.Close()

	// Meanwhile at the provider: a new mapping, a withdrawal.
	msxRegister(t, p, 100, 101, 1440, 1)
	msxRegister(t, p, 7, 8, 0, 1)

	// Restarted with its peer silent: the kept copy answers.
	dead := newFakeSubscriber(t)
	r = start(dead.addr())
	if a := msxAgreement(t, r); a.Copy != 100 || a.Complete || a.Stats.PagesIn != 0 {
		t.Fatalf("restarted: copy %d, complete %v, %d pages in", a.Copy, a.Complete, a.Stats.PagesIn)
	}
	if got := msxAsk(t, r, "10.0.1.77"); got == nil || got.TTL != 1440 || rlocOf(got) != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("answer from the kept copy: %+v", got)
	}
	r.Close()

	// Restarted with its peer answering: resynced by bulk.
	r = start(p.Addr())
	waitFor(t, 10*time.Second, "resync", func() bool { return msxAgreement(t, r).Complete })
	if n := msxSame(t, p, r, "d2"); n != 100 {
		t.Fatalf("resynced copy holds %d mappings, want 100", n)
	}
}
