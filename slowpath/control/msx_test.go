package control

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
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
func msxProvider(t *testing.T, clk *fakeClock, n int, listen netip.AddrPort, mod func(*slowpath.MSXAgreement)) *Engine {
	t.Helper()
	c := msConfig(siteConfig("s2", "10.0.0.0/8", true))
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
func msxRegister(t *testing.T, p *Engine, from, to int, ttl uint32, rloc byte) {
	t.Helper()
	src := netip.MustParseAddrPort("127.0.0.1:9")
	var msgs [][]byte
	for i := from; i < to; i += 255 {
		reg := wire.MapRegister{ProxyReply: true, Nonce: newNonce(), Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false)}
		for j := i; j < min(i+255, to); j++ {
			r := benchRecord(j)
			r.TTL = ttl
			r.Locators[0].Address = wire.IPAddress(netip.AddrFrom4([4]byte{192, 0, 2, rloc}))
			reg.Records = append(reg.Records, r)
		}
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
func msxRequester(t *testing.T, clk *fakeClock, peer netip.AddrPort, mod func(*slowpath.MSXAgreement)) *Engine {
	t.Helper()
	c := Config{MapResolver: &MapResolverConfig{}, RateLimit: RateLimitConfig{Off: true}}
	ag := slowpath.MSXAgreement{Name: "d2", Peers: []netip.AddrPort{peer}, Key: msxKey, Mode: slowpath.MSXModeCopy}
	if mod != nil {
		mod(&ag)
	}
	c.MSX = &slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{ag}, PageBytes: 9000}
	c.Logger = slog.New(slog.DiscardHandler)
	return newEngineWith(t, c, nil, slowpathOptions(clk))
}

func msxAgreement(t *testing.T, e *Engine) MSXAgreement {
	t.Helper()
	ags, ok := e.MSXAgreements()
	if !ok || len(ags) != 1 {
		t.Fatalf("agreements %v %v", ags, ok)
	}
	return ags[0]
}

// msxSame compares the requester's copy with the provider's table, record
// by record.
func msxSame(t *testing.T, p, r *Engine, name string) int {
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
