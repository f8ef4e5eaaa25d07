package control

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// lineCounter is a slog handler that counts the records by message.
type lineCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lineCounter) WithGroup(string) slog.Handler            { return l }
func (l *lineCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[r.Message]++
	return nil
}

func (l *lineCounter) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[msg]
}

// registerXTR injects from src a Map-Register of p with the given RLOCs,
// xTR-ID xtr and nonce n (ProxyReply set), and returns its bytes.
func registerXTR(t *testing.T, ms *Engine, src netip.AddrPort, p string, xtr wire.XTRID, n wire.Nonce, rlocs ...netip.Addr) []byte {
	t.Helper()
	pp := netip.MustParsePrefix(p)
	rec := wire.Record{TTL: 10, MaskLen: uint8(pp.Bits()), EID: wire.IPAddress(pp.Addr())}
	for _, a := range rlocs {
		rec.Locators = append(rec.Locators, wire.Locator{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(a)})
	}
	reg := wire.MapRegister{Nonce: n, ProxyReply: true, WantMapNotify: true, Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false),
		XTRIDPresent: xtr != wire.XTRID{}, XTRID: xtr, Records: []wire.Record{rec}}
	b, err := reg.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	inject(t, ms, src, b)
	return b
}

// resolverConn is a Map-Resolver's client socket: it asks and reads the
// answer.
type resolverConn struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
}

func newResolverConn(t *testing.T) *resolverConn {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &resolverConn{t: t, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// ask injects a Map-Request for eid with nonce n and returns the
// Map-Reply it was answered with (the read's deadline only guards against
// a hang: the answer is sent before inject returns).
func (r *resolverConn) ask(ms *Engine, eid string, n uint64) *wire.MapReply {
	r.t.Helper()
	a := netip.MustParseAddr(eid)
	req := wire.MapRequest{ITRRLOCs: []wire.Address{wire.IPAddress(r.addr.Addr())},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(a)}}}
	binary.BigEndian.PutUint64(req.Nonce[:], n)
	b, err := req.Append(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	inject(r.t, ms, r.addr, b)
	buf := make([]byte, 9216)
	for {
		r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			r.t.Fatalf("request %d not answered: %v", n, err)
		}
		var rep wire.MapReply
		if wire.MessageType(buf[0]>>4) != wire.TypeMapReply || rep.Parse(buf[:k]) != nil {
			continue
		}
		if binary.BigEndian.Uint64(rep.Nonce[:]) != n {
			r.t.Fatalf("reply nonce %x, want %d", rep.Nonce, n)
		}
		return &rep
	}
}

// TestRegistrantFlood (issue 13, problem 1): 4000 Map-Registers for one
// prefix, each with a new xTR-ID and its own RLOC, interleaved with
// Map-Requests: every request is answered, the registrants stay at the
// bound, the others are refused and counted, and their refusal is logged
// once, not per message.
func TestRegistrantFlood(t *testing.T) {
	lc := &lineCounter{}
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.RateLimit = RateLimitConfig{Off: true}
	c.Logger = slog.New(lc)
	ms := newEngine(t, c, nil)
	res := newResolverConn(t)
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	const flood, every = 4000, 100
	answered := 0
	for i := range flood {
		var x wire.XTRID
		binary.BigEndian.PutUint32(x[:], uint32(i+1))
		rloc := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		registerXTR(t, ms, src, "10.1.2.0/24", x, newNonce(), rloc)
		if i%every == every-1 {
			rep := res.ask(ms, "10.1.2.3", uint64(i))
			if len(rep.Records) != 1 || len(rep.Records[0].Locators) != min(i+1, regstore.DefaultMaxRegistrants) {
				t.Fatalf("after %d registers: reply %+v", i+1, rep.Records)
			}
			answered++
			if n := len(ms.Registrations()); n != min(i+1, regstore.DefaultMaxRegistrants) {
				t.Fatalf("after %d registers: %d registrants", i+1, n)
			}
		}
	}
	st := ms.Stats()
	if answered != flood/every || st.Registrations != regstore.DefaultMaxRegistrants ||
		st.RegistrationsLimited != flood-regstore.DefaultMaxRegistrants || st.RegistrationsRejected != st.RegistrationsLimited {
		t.Fatalf("answered %d; registrations %d, limited %d, rejected %d", answered, st.Registrations, st.RegistrationsLimited, st.RegistrationsRejected)
	}
	if n := lc.count("Map-Register refused"); n != 1 {
		t.Fatalf("%d refusal lines for one site's excess, want 1 (rate-limited)", n)
	}
}

// TestSiteLimits (issue 13, problem 2): a site over its prefix bound,
// a record with too many RLOCs and a Map-Server over its total are
// refused and counted; what is kept stays at the bounds.
func TestSiteLimits(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true), siteConfig("b", "10.2.0.0/16", true))
	c.RateLimit = RateLimitConfig{Off: true}
	c.MapServer.Limits = RegistrationLimits{PrefixesPerSite: 50, RLOCsPerRecord: 4, Registrations: 80}
	lc := &lineCounter{}
	c.Logger = slog.New(lc)
	ms := newEngine(t, c, nil)
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	rloc := netip.MustParseAddr("192.0.2.1")
	for i := range 200 {
		registerXTR(t, ms, src, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 1}), 32).String(), xtrA, newNonce(), rloc)
	}
	st := ms.Stats()
	if st.Registrations != 50 || st.RegistrationsLimited != 150 {
		t.Fatalf("site a: %d registrations, %d limited; want 50, 150", st.Registrations, st.RegistrationsLimited)
	}
	// Five RLOCs in one record: refused.
	var five []netip.Addr
	for i := range 5 {
		five = append(five, netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}))
	}
	registerXTR(t, ms, src, "10.2.0.1/32", xtrA, newNonce(), five...)
	if st := ms.Stats(); st.Registrations != 50 || st.RegistrationsLimited != 151 {
		t.Fatalf("five RLOCs: %d registrations, %d limited", st.Registrations, st.RegistrationsLimited)
	}
	// Site b fills the Map-Server's total of 80.
	for i := range 40 {
		registerXTR(t, ms, src, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(i), 1}), 32).String(), xtrA, newNonce(), rloc)
	}
	if st := ms.Stats(); st.Registrations != 80 || st.RegistrationsLimited != 161 {
		t.Fatalf("total: %d registrations, %d limited; want 80, 161", st.Registrations, st.RegistrationsLimited)
	}
	if n := len(ms.Registrations()); n != 80 {
		t.Fatalf("listing has %d registrations", n)
	}
	// One line per site and reason: a's prefixes, a's RLOCs, b's total.
	if n := lc.count("Map-Register refused"); n != 3 {
		t.Fatalf("%d refusal lines for 161 refusals of 3 kinds, want 3", n)
	}
}

// TestReplayedRegister (issue 13, problem 5): the same bytes from another
// source port are refused and counted and leave the registration's source
// alone; from the same source they are a retransmission, answered with a
// Map-Notify but not stored again. Both with and without xTR-ID.
func TestReplayedRegister(t *testing.T) {
	for _, xtr := range []wire.XTRID{{}, xtrA} {
		name := "by source"
		if xtr != (wire.XTRID{}) {
			name = "by xTR-ID"
		}
		t.Run(name, func(t *testing.T) {
			c := msConfig(siteConfig("a", "10.1.0.0/16", true))
			c.RateLimit = RateLimitConfig{Off: true}
			ms := newEngine(t, c, nil)
			etr := newResolverConn(t) // an ETR's socket, to read Map-Notifies
			b := registerXTR(t, ms, etr.addr, "10.1.2.0/24", xtr, newNonce(), netip.MustParseAddr("192.0.2.1"))
			notifies := func() int { return int(ms.Stats().Msg(wire.TypeMapNotify).Sent) }
			if notifies() != 1 {
				t.Fatalf("%d Map-Notifies after the register", notifies())
			}
			replayer := netip.AddrPortFrom(etr.addr.Addr(), etr.addr.Port()+1)
			inject(t, ms, replayer, b)
			st := ms.Stats()
			regs := ms.Registrations()
			if st.RegistrationsReplayed != 1 || st.RegistrationsRejected != 1 || len(regs) != 1 || regs[0].Source != etr.addr || notifies() != 1 {
				t.Fatalf("replay: replayed %d, rejected %d, notifies %d, registrations %+v", st.RegistrationsReplayed, st.RegistrationsRejected, notifies(), regs)
			}
			// The ETR's own retransmission: confirmed again, not stored again.
			before := regs[0].Expires
			inject(t, ms, etr.addr, b)
			st = ms.Stats()
			regs = ms.Registrations()
			if st.RegistrationsRetransmitted != 1 || st.RegistrationsAccepted != 1 || len(regs) != 1 || !regs[0].Expires.Equal(before) || notifies() != 2 {
				t.Fatalf("retransmission: retransmitted %d, accepted %d, notifies %d, registrations %+v", st.RegistrationsRetransmitted, st.RegistrationsAccepted, notifies(), regs)
			}
			// A new round (new nonce) refreshes as before.
			registerXTR(t, ms, etr.addr, "10.1.2.0/24", xtr, newNonce(), netip.MustParseAddr("192.0.2.1"))
			if st := ms.Stats(); st.RegistrationsAccepted != 2 || len(ms.Registrations()) != 1 {
				t.Fatalf("next round: %+v", st)
			}
			if !strings.Contains(ms.Registrations()[0].Source.String(), etr.addr.String()) {
				t.Fatal("source changed")
			}
		})
	}
}

// TestRegistrationsPaged: pages of the listing, each after the cursor of
// the last, give every registration once and in order, nested prefixes
// and several registrants of one prefix included.
func TestRegistrationsPaged(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.RateLimit = RateLimitConfig{Off: true}
	ms := newEngine(t, c, nil)
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	rloc := netip.MustParseAddr("192.0.2.1")
	for i := range 12 {
		for _, p := range []string{"10.1.%d.0/24", "10.1.%d.128/25", "10.1.%d.7/32"} {
			eid := strings.Replace(p, "%d", strconv.Itoa(i), 1)
			registerXTR(t, ms, src, eid, xtrA, newNonce(), rloc)
			if i%3 == 0 {
				registerXTR(t, ms, src, eid, wire.XTRID{0xb0, byte(i)}, newNonce(), rloc)
			}
		}
	}
	all := ms.Registrations()
	if len(all) != 36+12 {
		t.Fatalf("%d registrations", len(all))
	}
	var got []Registration
	var after *RegistrationCursor
	pages := 0
	for {
		page, more := ms.RegistrationsPage(after, 7)
		pages++
		if len(page) > 7 || more && len(page) != 7 {
			t.Fatalf("page %d: %d entries, more %v", pages, len(page), more)
		}
		got = append(got, page...)
		if !more {
			break
		}
		after = &page[len(page)-1].Cursor
	}
	if pages != (len(all)+6)/7 || len(got) != len(all) {
		t.Fatalf("%d pages, %d entries; want %d entries", pages, len(got), len(all))
	}
	seen := map[RegistrationCursor]bool{}
	for i, g := range got {
		if seen[g.Cursor] {
			t.Fatalf("%+v listed twice", g.Cursor)
		}
		seen[g.Cursor] = true
		if g.Cursor != all[i].Cursor {
			t.Fatalf("entry %d: %+v, the full listing has %+v", i, g.Cursor, all[i].Cursor)
		}
		if i > 0 {
			p, q := got[i-1].Cursor.Prefix, g.Cursor.Prefix
			if d := p.Addr().Compare(q.Addr()); d > 0 || d == 0 && p.Bits() > q.Bits() || p == q && got[i-1].Cursor.ID >= g.Cursor.ID {
				t.Fatalf("out of order: %+v then %+v", got[i-1].Cursor, g.Cursor)
			}
		}
	}
}

// TestExpiryLogSummarised (issue 13, problem 2): a site's registrations
// expiring together are one log line (and a count with the next), not one
// line each.
func TestExpiryLogSummarised(t *testing.T) {
	lc := &lineCounter{}
	clk := newFakeClock()
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.RateLimit = RateLimitConfig{Off: true}
	c.MapServer.RegistrationTimeout = 3 * time.Minute
	c.Logger = slog.New(lc)
	ms := newEngineWith(t, c, nil, slowpathOptions(clk))
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	for i := range 200 {
		registerXTR(t, ms, src, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 1}), 32).String(), xtrA, newNonce(), netip.MustParseAddr("192.0.2.1"))
	}
	clk.Add(3 * time.Minute)
	if err := ms.Core().Tick(); err != nil {
		t.Fatal(err)
	}
	st := ms.Stats()
	if st.RegistrationsExpired != 200 || st.Registrations != 0 {
		t.Fatalf("expired %d, left %d", st.RegistrationsExpired, st.Registrations)
	}
	if n := lc.count("registration expired"); n != 1 {
		t.Fatalf("%d expiry lines for 200 registrations of one site, want 1", n)
	}
}

// TestMergeTruncated: registrants with more RLOCs together than a record
// carries are answered with the first 255, counted and logged once.
func TestMergeTruncated(t *testing.T) {
	lc := &lineCounter{}
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.RateLimit = RateLimitConfig{Off: true}
	c.MapServer.Limits = RegistrationLimits{RegistrantsPerPrefix: 200}
	c.Logger = slog.New(lc)
	ms := newEngine(t, c, nil)
	res := newResolverConn(t)
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	for i := range 200 {
		var x wire.XTRID
		binary.BigEndian.PutUint32(x[:], uint32(i+1))
		registerXTR(t, ms, src, "10.1.2.0/24", x, newNonce(),
			netip.AddrFrom4([4]byte{100, 64, byte(i), 1}), netip.AddrFrom4([4]byte{100, 65, byte(i), 1}))
	}
	rep := res.ask(ms, "10.1.2.3", 1)
	if len(rep.Records) != 1 || len(rep.Records[0].Locators) != 255 {
		t.Fatalf("answer with %d locators, want 255", len(rep.Records[0].Locators))
	}
	if st := ms.Stats(); st.MergeTruncated != 1 || st.Registrations != 200 {
		t.Fatalf("merge_truncated %d, registrations %d", st.MergeTruncated, st.Registrations)
	}
	if n := lc.count("merged mapping truncated to what a record can carry"); n != 1 {
		t.Fatalf("%d truncation lines, want 1", n)
	}
}
