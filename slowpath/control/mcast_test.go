package control

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

var (
	mcKey  = AuthKey{KeyID: 2, Alg: wire.AuthHMACSHA256128, Secret: "multicast-domain"}
	srcEID = netip.MustParsePrefix("10.1.1.1/32")
	grpEID = netip.MustParsePrefix("232.1.1.1/32")
)

// fakeListener is a MembershipListener fed by the test.
type fakeListener struct {
	si      SiteInterface
	ch      chan []byte
	mu      sync.Mutex
	queries []netip.Addr
	once    sync.Once
	done    chan struct{}
}

func newFakeListener(name string) *fakeListener {
	return &fakeListener{si: SiteInterface{Name: name}, ch: make(chan []byte, 16), done: make(chan struct{})}
}

func (f *fakeListener) Interface() SiteInterface { return f.si }

func (f *fakeListener) Read(b []byte) (int, netip.Addr, netip.Addr, bool, error) {
	select {
	case m := <-f.ch:
		mld := m[0] >= 128
		return copy(b, m), netip.Addr{}, netip.Addr{}, mld, nil
	case <-f.done:
		return 0, netip.Addr{}, netip.Addr{}, false, ErrClosed
	}
}

func (f *fakeListener) Query(g netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, g)
	return nil
}

func (f *fakeListener) Close() error { f.once.Do(func() { close(f.done) }); return nil }

func (f *fakeListener) inject(t testing.TB, recs ...wire.GroupRecord) {
	t.Helper()
	b, err := wire.AppendIGMPv3Report(nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	f.ch <- b
}

// seq orders events across engines (make-before-break checks).
type seq struct {
	mu  sync.Mutex
	n   int
	log []string
}

func (s *seq) add(ev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.log = append(s.log, ev)
}

// mcInstaller records (S,G) installs.
type mcInstaller struct {
	fakeInstaller
	name string
	seq  *seq
	mu2  sync.Mutex
	mc   []ResolvedMulticast
	gone int
}

func (f *mcInstaller) InstallMulticast(m *ResolvedMulticast) {
	f.mu2.Lock()
	c := *m
	c.RLE = slices.Clone(m.RLE)
	f.mc = append(f.mc, c)
	f.mu2.Unlock()
	if f.seq != nil {
		for _, e := range m.RLE {
			f.seq.add(fmt.Sprintf("%s has %s", f.name, e.Addr))
		}
		f.seq.add(fmt.Sprintf("%s install %v", f.name, addrsOf(m.RLE)))
	}
}

func (f *mcInstaller) RemoveMulticast(uint32, netip.Prefix, netip.Prefix) {
	f.mu2.Lock()
	defer f.mu2.Unlock()
	f.gone++
}

// last returns the last installed RLE's addresses, sorted, and whether
// there was an install.
func (f *mcInstaller) last() ([]netip.Addr, bool) {
	f.mu2.Lock()
	defer f.mu2.Unlock()
	if len(f.mc) == 0 {
		return nil, false
	}
	return addrsOf(f.mc[len(f.mc)-1].RLE), true
}

func addrsOf(es []replicate.Entry) []netip.Addr {
	var out []netip.Addr
	for _, e := range es {
		out = append(out, e.Addr)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// mcSite may register unicast EIDs in 10/8 and every multicast group.
func mcSite() SiteConfig {
	return SiteConfig{Name: "mc", Keys: []AuthKey{testKey}, Prefixes: []SitePrefix{
		{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, AcceptMoreSpecifics: true},
		{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix("224.0.0.0/4")}, AcceptMoreSpecifics: true},
		{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix("ff00::/8")}, AcceptMoreSpecifics: true},
	}}
}

// rig is a Map-Server, an ITR and any number of ETRs and RTRs on loopback;
// RLOCs are documentation addresses mapped to the engines' sockets.
type rig struct {
	t     *testing.T
	ms    *Engine
	itr   *Engine
	inst  *mcInstaller
	mu    sync.Mutex
	ctl   map[netip.Addr]netip.AddrPort
	seq   seq
	tweak func(*MulticastConfig)
	// opt are the core options of the ETRs started next (a fake clock).
	opt slowpath.Options
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, ctl: map[netip.Addr]netip.AddrPort{}}
	r.ms = newEngine(t, Config{
		MapServer: &MapServerConfig{Sites: []SiteConfig{mcSite()}},
		Multicast: &MulticastConfig{Key: mcKey, RetryInterval: 100 * time.Millisecond},
	}, nil)
	return r
}

func (r *rig) controlAddr(a netip.Addr) netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ap, ok := r.ctl[a]; ok {
		return ap
	}
	return netip.AddrPortFrom(a, wire.ControlPort)
}

func (r *rig) startITR() {
	r.inst = &mcInstaller{name: "itr", seq: &r.seq}
	r.itr = newEngine(r.t, Config{
		ITR:       &ITRConfig{MapResolvers: []netip.AddrPort{r.ms.Addr()}, ITRRLOCs: []netip.Addr{lo4}, RetransmitInterval: 200 * time.Millisecond},
		Multicast: &MulticastConfig{Key: mcKey, ControlAddr: r.controlAddr, ProbeInterval: 100 * time.Millisecond},
	}, r.inst)
}

func (r *rig) mcConfig(rloc string) *MulticastConfig {
	c := &MulticastConfig{
		RLOC: netip.MustParseAddr(rloc), Key: mcKey,
		RetryInterval: 100 * time.Millisecond, RegisterInterval: 2 * time.Second,
		QueryInterval: -1, ProbeInterval: 100 * time.Millisecond, ControlAddr: r.controlAddr,
		LastMemberQueryTime: 100 * time.Millisecond,
	}
	if r.tweak != nil {
		r.tweak(c)
	}
	return c
}

// startETR starts an ETR with a fake site interface.
func (r *rig) startETR(rloc string) (*Engine, *fakeListener) {
	l := newFakeListener("site0")
	c := r.mcConfig(rloc)
	c.Listeners = []MembershipListener{l}
	e := newEngineWith(r.t, Config{
		ETR: &ETRConfig{
			MapServers: []MapServerPeer{{Addr: r.ms.Addr(), Key: testKey}},
			Mappings:   []Mapping{mapping("10.2.0.0/16", "192.0.2.250")},
		},
		Multicast: c,
	}, nil, r.opt)
	r.mu.Lock()
	r.ctl[c.RLOC] = e.Addr()
	r.mu.Unlock()
	return e, l
}

// startRTR starts an RTR of (srcEID, grpEID) at level.
func (r *rig) startRTR(rloc string, level uint8) (*Engine, *mcInstaller) {
	inst := &mcInstaller{name: rloc, seq: &r.seq}
	c := r.mcConfig(rloc)
	c.MapServers = []MapServerPeer{{Addr: r.ms.Addr(), Key: testKey}}
	c.RTRs = []RTRGroup{{Source: srcEID, Group: grpEID, Level: level}}
	e := newEngine(r.t, Config{Multicast: c}, inst)
	r.mu.Lock()
	r.ctl[c.RLOC] = e.Addr()
	r.mu.Unlock()
	return e, inst
}

func join(s, g string) wire.GroupRecord {
	return wire.GroupRecord{Type: wire.AllowNewSources, Group: netip.MustParseAddr(g), Sources: []netip.Addr{netip.MustParseAddr(s)}}
}

func block(s, g string) wire.GroupRecord {
	return wire.GroupRecord{Type: wire.BlockOldSources, Group: netip.MustParseAddr(g), Sources: []netip.Addr{netip.MustParseAddr(s)}}
}

func (r *rig) waitRLE(what string, want []netip.Addr) {
	r.t.Helper()
	waitFor(r.t, 5*time.Second, what, func() bool {
		got := addrsOf(r.ms.McastRLE(0, srcEID, grpEID))
		return slices.Equal(got, want)
	})
}

func (r *rig) waitITR(what string, want []netip.Addr) {
	r.t.Helper()
	waitFor(r.t, 5*time.Second, what, func() bool {
		got, ok := r.inst.last()
		return ok && slices.Equal(got, want)
	})
}

// TestSignalFreeJoinNotifyLeave: a receiver's report makes the ETR register
// (S,G) with the merge bit, the Map-Server merges, the ITR that asked gets
// every change in an acknowledged unsolicited Map-Notify and installs it,
// and a leave withdraws.
func TestSignalFreeJoinNotifyLeave(t *testing.T) {
	r := newRig(t)
	r.startITR()
	etr1, l1 := r.startETR("192.0.2.11")
	etr2, l2 := r.startETR("192.0.2.12")

	// The ITR misses first: no receivers yet, an empty RLE is installed
	// and the ITR is subscribed.
	if !r.itr.Miss(MissEvent{Dst: grpEID.Addr(), Src: srcEID.Addr()}) {
		t.Fatal("miss refused")
	}
	r.waitITR("empty (S,G) installed", nil)

	l1.inject(t, join("10.1.1.1", "232.1.1.1"))
	r.waitRLE("ETR 1 merged", addrs("192.0.2.11"))
	r.waitITR("ITR notified of ETR 1", addrs("192.0.2.11"))

	l2.inject(t, join("10.1.1.1", "232.1.1.1"))
	r.waitRLE("both ETRs merged into one RLE", addrs("192.0.2.11", "192.0.2.12"))
	r.waitITR("ITR notified of both", addrs("192.0.2.11", "192.0.2.12"))

	waitFor(t, 3*time.Second, "Map-Notify-Acks", func() bool { return r.ms.McastStats().NotifyAcked >= 2 })

	// BLOCK_OLD_SOURCES: after the last member query time, withdrawn.
	l1.inject(t, block("10.1.1.1", "232.1.1.1"))
	r.waitRLE("ETR 1 withdrawn", addrs("192.0.2.12"))
	r.waitITR("ITR notified of the withdrawal", addrs("192.0.2.12"))
	if s := etr1.McastStats(); s.Joins != 1 || s.Leaves != 1 || s.Withdraws == 0 {
		t.Fatalf("ETR 1 stats %+v", s)
	}
	l1.mu.Lock()
	q := slices.Clone(l1.queries)
	l1.mu.Unlock()
	if !slices.Contains(q, netip.MustParseAddr("232.1.1.1")) {
		t.Fatalf("no group-specific query after the leave: %v", q)
	}
	l2.inject(t, block("10.1.1.1", "232.1.1.1"))
	r.waitITR("ITR notified: no receivers", nil)
	if s := etr2.McastStats(); s.Registers == 0 {
		t.Fatalf("ETR 2 stats %+v", s)
	}
	if got := r.ms.McastRLE(0, srcEID, grpEID); len(got) != 0 {
		t.Fatalf("merged RLE left: %v", got)
	}
}

// TestMembershipTimeout: without reports a membership expires after the
// membership interval and the registration is withdrawn; a report before
// the deadline keeps it.
//
// The ETR runs on a fake clock: time passes when the test says so.
func TestMembershipTimeout(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *MulticastConfig) { c.MembershipInterval = 400 * time.Millisecond }
	clk := newFakeClock()
	r.opt = slowpathOptions(clk)
	etr, l := r.startETR("192.0.2.21")
	// report injects a report and waits until the ETR took it at the
	// clock's time (its membership then expires 400 ms later).
	report := func(what string) {
		want := clk.Now().Add(400 * time.Millisecond)
		l.inject(t, join("10.1.1.1", "232.1.1.1"))
		waitFor(t, 5*time.Second, what, func() bool {
			ms := etr.Memberships()
			return len(ms) == 1 && ms[0].Expires.Equal(want)
		})
	}
	// pass moves the ETR's clock on by d and runs its timers due.
	pass := func(d time.Duration) {
		clk.Add(d)
		if err := etr.Core().Tick(); err != nil {
			t.Fatal(err)
		}
	}
	report("membership learned")
	r.waitRLE("registered", addrs("192.0.2.21"))
	// Refresh twice within the interval: still there at 600 ms.
	for range 2 {
		pass(250 * time.Millisecond)
		report("membership refreshed")
	}
	pass(100 * time.Millisecond)
	if len(etr.Memberships()) != 1 {
		t.Fatalf("refreshed membership expired: %+v", etr.Memberships())
	}
	if got := addrsOf(r.ms.McastRLE(0, srcEID, grpEID)); len(got) != 1 {
		t.Fatalf("refreshed membership lost: %v", got)
	}
	pass(300 * time.Millisecond)
	r.waitRLE("expired and withdrawn", nil)
	if len(etr.Memberships()) != 0 {
		t.Fatalf("memberships left: %+v", etr.Memberships())
	}
}

// TestIGMPv2AndStarG: a v2 report is a (*,G) join; the ITR's (S,G) request
// is answered from the (*,G) entry; a v2 leave withdraws it.
func TestIGMPv2AndStarG(t *testing.T) {
	r := newRig(t)
	r.startITR()
	_, l := r.startETR("192.0.2.31")
	g := netip.MustParseAddr("239.1.1.1")
	b, _ := wire.AppendIGMPv2(nil, g, false)
	l.ch <- b
	star := netip.PrefixFrom(g, 32)
	waitFor(t, 5*time.Second, "(*,G) registered", func() bool {
		return slices.Equal(addrsOf(r.ms.McastRLE(0, netip.Prefix{}, star)), addrs("192.0.2.31"))
	})
	r.itr.Miss(MissEvent{Dst: g, Src: netip.MustParseAddr("10.9.9.9")})
	r.waitITR("ITR installed (*,G)", addrs("192.0.2.31"))
	r.inst.mu2.Lock()
	got := r.inst.mc[len(r.inst.mc)-1]
	r.inst.mu2.Unlock()
	if got.Source.Bits() != 0 || got.Group != star {
		t.Fatalf("installed %v, %v", got.Source, got.Group)
	}
	b, _ = wire.AppendIGMPv2(nil, g, true)
	l.ch <- b
	waitFor(t, 5*time.Second, "(*,G) withdrawn", func() bool { return len(r.ms.McastRLE(0, netip.Prefix{}, star)) == 0 })
	r.waitITR("ITR notified", nil)
}

// TestHashUnderlayGroup: every ETR computes the same G-RLOC, registers it
// (and its U-RLOC) and joins it once; the Map-Server's RLE has the G-RLOC
// once.
func TestHashUnderlayGroup(t *testing.T) {
	r := newRig(t)
	rng := netip.MustParsePrefix("239.255.0.0/16")
	want, err := replicate.HashGroup(srcEID.Addr(), grpEID.Addr(), rng)
	if err != nil {
		t.Fatal(err)
	}
	var joiners []*fakeJoiner
	r.tweak = func(c *MulticastConfig) {
		j := &fakeJoiner{}
		joiners = append(joiners, j)
		c.Underlay = &UnderlayConfig{Method: UnderlayHash, Range: rng, RegisterURLOC: true, Joiner: j}
	}
	var etrs []*Engine
	for i, rloc := range []string{"192.0.2.41", "192.0.2.42", "192.0.2.43"} {
		e, l := r.startETR(rloc)
		etrs = append(etrs, e)
		l.inject(t, join("10.1.1.1", "232.1.1.1"))
		_ = i
	}
	r.waitRLE("G-RLOC once plus three U-RLOCs", addrs("192.0.2.41", "192.0.2.42", "192.0.2.43", want.String()))
	for i, e := range etrs {
		if g := e.UnderlayGroupFor(0, srcEID, grpEID); g != want {
			t.Fatalf("ETR %d chose %v, want %v", i, g, want)
		}
		if j := joiners[i].joined(); !slices.Equal(j, []netip.Addr{want}) {
			t.Fatalf("ETR %d joined %v", i, j)
		}
	}
}

type fakeJoiner struct {
	mu sync.Mutex
	in []netip.Addr
}

func (j *fakeJoiner) Join(g, _ netip.Addr) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.in = append(j.in, g)
	return nil
}

func (j *fakeJoiner) Leave(g, _ netip.Addr) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.in = slices.DeleteFunc(j.in, func(a netip.Addr) bool { return a == g })
	return nil
}

func (j *fakeJoiner) joined() []netip.Addr {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.in)
}

// TestLookupUnderlayGroup: the ETR looks up group-<G-EID> at a fake
// Map-Resolver (a Map-Server holding the provider's registration) and
// registers the G-RLOC it names; a G-EID range maps many groups to one
// G-RLOC.
func TestLookupUnderlayGroup(t *testing.T) {
	r := newRig(t)
	gm := replicate.GroupMapping{IID: 9, GEID: netip.MustParsePrefix("232.1.0.0/16"),
		Groups: []replicate.UnderlayGroup{{Group: netip.MustParseAddr("239.7.7.7")}}}
	mr := newFakeGroupMR(t, gm)
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayLookup, LookupIID: 9, MapResolvers: []netip.AddrPort{mr.addr}}
	}
	e, l := r.startETR("192.0.2.51")
	l.inject(t, join("10.1.1.1", "232.1.1.1"), join("10.1.1.1", "232.1.200.9"))
	r.waitRLE("G-RLOC from the lookup", addrs("239.7.7.7"))
	g2 := netip.MustParsePrefix("232.1.200.9/32")
	waitFor(t, 5*time.Second, "second group, same G-RLOC", func() bool {
		return slices.Equal(addrsOf(r.ms.McastRLE(0, srcEID, g2)), addrs("239.7.7.7"))
	})
	if g := e.UnderlayGroupFor(0, srcEID, grpEID); g != netip.MustParseAddr("239.7.7.7") {
		t.Fatalf("chose %v", g)
	}
	if n := mr.requests(); n < 2 {
		t.Fatalf("fake Map-Resolver saw %d lookups", n)
	}
}

// fakeGroupMR answers group-name Map-Requests (in ECMs) with a mapping.
type fakeGroupMR struct {
	addr netip.AddrPort
	mu   sync.Mutex
	n    int
}

func newFakeGroupMR(t *testing.T, gm replicate.GroupMapping) *fakeGroupMR {
	f := &fakeGroupMR{}
	table := replicate.NewGroupMap()
	if err := table.Add(gm); err != nil {
		t.Fatal(err)
	}
	conn := listenUDP(t)
	f.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var ecm wire.ECM
			var req wire.MapRequest
			if ecm.Parse(buf[:n]) != nil || req.Parse(ecm.Message) != nil {
				continue
			}
			m, err := table.LookupName(&req.Records[0].EID)
			if err != nil {
				continue
			}
			rec, err := m.Record(1, 1, 100)
			if err != nil {
				continue
			}
			rep := wire.MapReply{Nonce: req.Nonce, Records: []wire.Record{rec}}
			b, _ := rep.Append(nil)
			f.mu.Lock()
			f.n++
			f.mu.Unlock()
			_, _ = conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(from.Addr(), ecm.SrcPort))
		}
	}()
	return f
}

func (f *fakeGroupMR) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestDuplicateSuppression: once the ETR that registered both its G-RLOC
// and U-RLOC receives via the G-RLOC, its U-RLOC stops answering (S,G)
// RLOC-probes.
func TestDuplicateSuppression(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16"), RegisterURLOC: true}
	}
	e, l := r.startETR("192.0.2.61")
	l.inject(t, join("10.1.1.1", "232.1.1.1"))
	r.waitRLE("registered", addrs("192.0.2.61", mustHash(t).String()))
	conn := listenUDP(t)
	probe := func() bool { return sgProbeAnswered(t, conn, e.Addr()) }
	if !probe() {
		t.Fatal("no probe reply before suppression")
	}
	e.ReceivedOnUnderlayGroup(mustHash(t))
	if !e.ProbeSuppressed() {
		t.Fatal("flag not set")
	}
	if probe() {
		t.Fatal("probe answered on the U-RLOC after receiving via the G-RLOC")
	}
	if s := e.McastStats(); s.ProbesSuppressed == 0 {
		t.Fatalf("stats %+v", s)
	}
}

// sgProbeAnswered sends an (S,G) RLOC-probe for (srcEID, grpEID) from conn
// to dst and reports whether its probe reply came back within 300 ms.
func sgProbeAnswered(t *testing.T, conn *net.UDPConn, dst netip.AddrPort) bool {
	t.Helper()
	req := wire.MapRequest{Probe: true, Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.SGAddress(0, srcEID, grpEID)}}}
	b, _ := req.Append(nil)
	if _, err := conn.WriteToUDPAddrPort(b, dst); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 2000)
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		var rep wire.MapReply
		if rep.Parse(buf[:n]) == nil && rep.Nonce == req.Nonce && rep.Probe {
			return true
		}
	}
}

// TestDuplicateSuppressionAtITR: an ITR whose (S,G) RLE has a G-RLOC and
// U-RLOCs probes the U-RLOCs; once the ETR receives through the G-RLOC and
// stops answering, the ITR installs the RLE without its U-RLOC (one copy to
// the group, none to that ETR), keeping the other ETR's U-RLOC.
func TestDuplicateSuppressionAtITR(t *testing.T) {
	r := newRig(t)
	r.startITR()
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16"), RegisterURLOC: true}
	}
	e1, l1 := r.startETR("192.0.2.65")
	_, l2 := r.startETR("192.0.2.66")
	l1.inject(t, join("10.1.1.1", "232.1.1.1"))
	l2.inject(t, join("10.1.1.1", "232.1.1.1"))
	g := mustHash(t).String()
	r.waitRLE("both registered G-RLOC and U-RLOC", addrs("192.0.2.65", "192.0.2.66", g))
	r.itr.Miss(MissEvent{Dst: grpEID.Addr(), Src: srcEID.Addr()})
	r.waitITR("ITR installed the whole RLE", addrs("192.0.2.65", "192.0.2.66", g))
	// Probes answered: nothing changes over ProbeMisses+2 probe rounds of
	// the two U-RLOCs (a U-RLOC that missed ProbeMisses would be down).
	sent := r.itr.Stats().ProbesSent
	waitFor(t, 10*time.Second, "probe rounds", func() bool { return r.itr.Stats().ProbesSent >= sent+2*(3+2) })
	if got, _ := r.inst.last(); len(got) != 3 {
		t.Fatalf("ITR dropped an answering U-RLOC: %v", got)
	}
	e1.ReceivedOnUnderlayGroup(mustHash(t))
	r.waitITR("ITR stops sending to ETR 1's U-RLOC", addrs("192.0.2.66", g))
	if s := r.itr.McastStats(); s.URLOCsDown != 1 {
		t.Fatalf("ITR stats %+v", s)
	}
}

func mustHash(t *testing.T) netip.Addr {
	g, err := replicate.HashGroup(srcEID.Addr(), grpEID.Addr(), netip.MustParsePrefix("239.255.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// treeRig: 2 level-0 RTRs and 6 ETRs.
func treeRig(t *testing.T) (*rig, []*Engine, []*mcInstaller, []*Engine) {
	r := newRig(t)
	r.startITR()
	var rtrs []*Engine
	var insts []*mcInstaller
	for _, a := range []string{"203.0.113.1", "203.0.113.2"} {
		e, in := r.startRTR(a, 0)
		rtrs = append(rtrs, e)
		insts = append(insts, in)
	}
	var etrs []*Engine
	for i := 1; i <= 6; i++ {
		e, l := r.startETR(fmt.Sprintf("198.51.100.%d", i))
		etrs = append(etrs, e)
		l.inject(t, join("10.1.1.1", "232.1.1.1"))
	}
	want := addrs("203.0.113.1", "203.0.113.2", "198.51.100.1", "198.51.100.2", "198.51.100.3",
		"198.51.100.4", "198.51.100.5", "198.51.100.6")
	r.waitRLE("RTRs and ETRs merged", want)
	return r, rtrs, insts, etrs
}

// rtrKids returns the children an RTR installed (its RLE minus itself).
func rtrKids(in *mcInstaller, self string) []netip.Addr {
	got, _ := in.last()
	return slices.DeleteFunc(got, func(a netip.Addr) bool { return a == netip.MustParseAddr(self) })
}

// TestReplicationTree: each level-0 RTR gets 3 of the 6 ETRs, the ITR's
// RLE has the two RTRs at its lowest level, and the tree is printable.
func TestReplicationTree(t *testing.T) {
	r, rtrs, insts, etrs := treeRig(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("RTR 1 %v RTR 2 %v", rtrKids(insts[0], "203.0.113.1"), rtrKids(insts[1], "203.0.113.2"))
			for _, e := range etrs {
				info, _ := e.McastTree(0, srcEID, grpEID)
				t.Logf("ETR: %s", info)
			}
		}
	})
	waitFor(t, 5*time.Second, "3 children per RTR", func() bool {
		return len(rtrKids(insts[0], "203.0.113.1")) == 3 && len(rtrKids(insts[1], "203.0.113.2")) == 3
	})
	all := append(rtrKids(insts[0], "203.0.113.1"), rtrKids(insts[1], "203.0.113.2")...)
	slices.SortFunc(all, netip.Addr.Compare)
	if !slices.Equal(all, addrs("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6")) {
		t.Fatalf("children %v", all)
	}
	// The ITR replicates to the lowest level: the two RTRs.
	r.itr.Miss(MissEvent{Dst: grpEID.Addr(), Src: srcEID.Addr()})
	waitFor(t, 5*time.Second, "ITR installed the tree", func() bool {
		got, ok := r.inst.last()
		return ok && len(got) == 8
	})
	p, err := replicate.NewPlanFromEntries(r.inst.mc[len(r.inst.mc)-1].RLE, replicate.PlanConfig{Role: replicate.RoleITR,
		Template: func(netip.Addr) []byte { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Unsendable())+p.Len() != 2 {
		t.Fatalf("ITR plan has %d copies + %d unsendable, want 2", p.Len(), len(p.Unsendable()))
	}
	info, ok := rtrs[0].McastTree(0, srcEID, grpEID)
	if !ok || info.Role != "rtr" || len(info.Children) != 3 {
		t.Fatalf("RTR view %+v", info)
	}
	it, ok := r.itr.McastTree(0, srcEID, grpEID)
	if !ok || it.Role != "itr" || len(it.Children) != 2 || !strings.Contains(it.Tree, "rtr 203.0.113.1 level 0 children=3") {
		t.Fatalf("ITR view:\n%s", it)
	}
	t.Logf("ITR view:\n%s", it)
}

// TestTreeFailover: an RTR that stops answering probes loses its children
// to the other RTR.
func TestTreeFailover(t *testing.T) {
	_, rtrs, insts, etrs := treeRig(t)
	waitFor(t, 5*time.Second, "3 children per RTR", func() bool {
		return len(rtrKids(insts[0], "203.0.113.1")) == 3 && len(rtrKids(insts[1], "203.0.113.2")) == 3
	})
	rtrs[0].McastStopProbeReplies(true)
	waitFor(t, 5*time.Second, "all 6 ETRs under RTR 2", func() bool { return len(rtrKids(insts[1], "203.0.113.2")) == 6 })
	failures := uint64(0)
	for _, e := range etrs {
		waitFor(t, 2*time.Second, "ETR confirmed under RTR 2", func() bool {
			info, _ := e.McastTree(0, srcEID, grpEID)
			return info.Parent == netip.MustParseAddr("203.0.113.2") && !info.Joining.IsValid()
		})
		failures += e.McastStats().ParentFailures
	}
	if failures != 3 {
		t.Fatalf("%d parent failures detected, want 3", failures)
	}
}

// TestTreeGracefulDeparture: make-before-break: every child of the
// departing RTR is in the new parent's replication before it leaves the
// old one's; the departing RTR then withdraws.
func TestTreeGracefulDeparture(t *testing.T) {
	r, rtrs, insts, _ := treeRig(t)
	waitFor(t, 5*time.Second, "3 children per RTR", func() bool {
		return len(rtrKids(insts[0], "203.0.113.1")) == 3 && len(rtrKids(insts[1], "203.0.113.2")) == 3
	})
	moving := rtrKids(insts[0], "203.0.113.1")
	r.seq.mu.Lock()
	mark := len(r.seq.log)
	r.seq.mu.Unlock()
	if err := rtrs[0].McastDepart(0, srcEID, grpEID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "all under RTR 2", func() bool { return len(rtrKids(insts[1], "203.0.113.2")) == 6 })
	waitFor(t, 5*time.Second, "RTR 1 withdrawn", func() bool {
		return !slices.Contains(addrsOf(r.ms.McastRLE(0, srcEID, grpEID)), netip.MustParseAddr("203.0.113.1"))
	})
	insts[0].mu2.Lock()
	gone := insts[0].gone
	insts[0].mu2.Unlock()
	if gone != 1 {
		t.Fatalf("RTR 1 removed its (S,G) %d times", gone)
	}
	// For every moving child: after the departure started, RTR 2 installs
	// it before RTR 1 installs a replication list without it.
	r.seq.mu.Lock()
	log := slices.Clone(r.seq.log[mark:])
	r.seq.mu.Unlock()
	for _, c := range moving {
		joined, left := -1, -1
		for i, ev := range log {
			if joined < 0 && ev == fmt.Sprintf("203.0.113.2 has %s", c) {
				joined = i
			}
			if left < 0 && strings.HasPrefix(ev, "203.0.113.1 install") && !strings.Contains(ev, c.String()) {
				left = i
			}
		}
		if joined < 0 || left < 0 || joined > left {
			t.Fatalf("child %s: joined RTR 2 at %d, left RTR 1 at %d:\n%s", c, joined, left, strings.Join(log, "\n"))
		}
	}
}

// TestRefusedRLEs: a registration with hundreds of entries, with
// non-RLOC addresses, a merged RLE that would grow past the bound, and a
// loop (an RTR told to replicate to itself) are refused with a log line.
func TestRefusedRLEs(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	lg := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	ms := newEngine(t, Config{Logger: lg,
		MapServer: &MapServerConfig{Sites: []SiteConfig{mcSite()}},
		Multicast: &MulticastConfig{Key: mcKey, MaxRLE: 64},
	}, nil)
	conn := listenUDP(t)
	send := func(nodes []wire.RLENode) {
		reg := wire.MapRegister{Merge: true, Nonce: newNonce(), Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false),
			Records: []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), 3, nodes)}}
		b, err := reg.AppendSigned(nil, []byte(testKey.Secret))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDPAddrPort(b, ms.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	var big []wire.RLENode
	// 800 entries (8 KB) fit the engine's 9216-byte receive buffers;
	// larger datagrams are dropped as truncated before parsing.
	for i := range 800 {
		big = append(big, wire.RLENode{Level: 128, Address: wire.IPAddress(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))})
	}
	send(big)
	send([]wire.RLENode{{Level: 128, Address: wire.IPAddress(netip.MustParseAddr("127.0.0.1"))}})
	send([]wire.RLENode{{Level: 128, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}, {Level: 5, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}})
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Log(logs.String())
			mu.Unlock()
		}
	})
	waitFor(t, 3*time.Second, "three refusals logged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logs.String(), "bad RLE") == 3
	})
	if got := ms.McastRLE(0, srcEID, grpEID); len(got) != 0 {
		t.Fatalf("refused RLEs merged: %v", got)
	}
	// The merge bound across registrants: 40 + 40 > 64.
	for k := range 2 {
		var ns []wire.RLENode
		for i := range 40 {
			ns = append(ns, wire.RLENode{Level: 128, Address: wire.IPAddress(netip.AddrFrom4([4]byte{198, 19, byte(k), byte(i)}))})
		}
		reg := wire.MapRegister{Merge: true, Nonce: newNonce(), XTRIDPresent: true, XTRID: wire.XTRID{byte(k + 1)},
			Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false), Records: []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), 3, ns)}}
		b, _ := reg.AppendSigned(nil, []byte(testKey.Secret))
		conn.WriteToUDPAddrPort(b, ms.Addr())
	}
	waitFor(t, 3*time.Second, "merge bound logged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "merged RLE too large")
	})
	if got := ms.McastRLE(0, srcEID, grpEID); len(got) != 40 {
		t.Fatalf("merged %d entries, want the first registrant's 40", len(got))
	}
}

// TestRTRRefusesLoopJoin: an RTR refuses a join naming itself or a child
// at its own level, with a log line, and installs nothing for it.
func TestRTRRefusesLoopJoin(t *testing.T) {
	r := newRig(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	r.tweak = func(c *MulticastConfig) { c.ProbeInterval = time.Hour }
	inst := &mcInstaller{name: "rtr"}
	c := r.mcConfig("203.0.113.9")
	c.MapServers = []MapServerPeer{{Addr: r.ms.Addr(), Key: testKey}}
	c.RTRs = []RTRGroup{{Source: srcEID, Group: grpEID, Level: 3}}
	e := newEngine(t, Config{Multicast: c, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))}, inst)
	conn := listenUDP(t)
	for _, n := range []wire.RLENode{
		{Level: 128, Address: wire.IPAddress(netip.MustParseAddr("203.0.113.9"))},
		{Level: 3, Address: wire.IPAddress(netip.MustParseAddr("203.0.113.10"))},
	} {
		reg := wire.MapRegister{Merge: true, Nonce: newNonce(), Auth: wire.NewAuth(mcKey.KeyID, mcKey.Alg, false),
			Records: []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), 3, []wire.RLENode{n})}}
		b, _ := reg.AppendSigned(nil, []byte(mcKey.Secret))
		conn.WriteToUDPAddrPort(b, e.Addr())
	}
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Log(logs.String())
			mu.Unlock()
		}
	})
	waitFor(t, 3*time.Second, "two loop refusals", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logs.String(), "refusing RLE") == 2 && strings.Count(logs.String(), "replicate to ourselves") == 2
	})
	if kids := rtrKids(inst, "203.0.113.9"); len(kids) != 0 {
		t.Fatalf("RTR installed children %v", kids)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// listenUDP opens a loopback UDP socket closed at the end of the test.
func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMLDReceivers: an MLDv2 report joins an IPv6 (S,G), an MLDv1 report
// an IPv6 (*,G); the ITR resolves the IPv6 (S,G); MLDv1 done withdraws.
func TestMLDReceivers(t *testing.T) {
	r := newRig(t)
	r.startITR()
	etr, l := r.startETR("192.0.2.71")
	s6 := netip.MustParseAddr("2001:db8:1::1")
	g6 := netip.MustParseAddr("ff3e::8000:1")
	ll, all := netip.MustParseAddr("fe80::2"), netip.MustParseAddr("ff02::16")
	b, err := wire.AppendMLDv2Report(nil, []wire.GroupRecord{{Type: wire.ModeIsInclude, Group: g6, Sources: []netip.Addr{s6}}}, ll, all)
	if err != nil {
		t.Fatal(err)
	}
	l.ch <- b
	g2 := netip.MustParseAddr("ff3e::8000:2")
	b, _ = wire.AppendMLDv1(nil, g2, false, ll, g2)
	l.ch <- b
	sp, gp := netip.PrefixFrom(s6, 128), netip.PrefixFrom(g6, 128)
	waitFor(t, 5*time.Second, "IPv6 (S,G) registered", func() bool {
		return slices.Equal(addrsOf(r.ms.McastRLE(0, sp, gp)), addrs("192.0.2.71"))
	})
	waitFor(t, 5*time.Second, "IPv6 (*,G) registered", func() bool {
		return slices.Equal(addrsOf(r.ms.McastRLE(0, netip.Prefix{}, netip.PrefixFrom(g2, 128))), addrs("192.0.2.71"))
	})
	r.itr.Miss(MissEvent{Dst: g6, Src: s6})
	r.waitITR("ITR installed the IPv6 (S,G)", addrs("192.0.2.71"))
	b, _ = wire.AppendMLDv1(nil, g2, true, ll, netip.MustParseAddr("ff02::2"))
	l.ch <- b
	waitFor(t, 5*time.Second, "IPv6 (*,G) withdrawn", func() bool {
		return len(r.ms.McastRLE(0, netip.Prefix{}, netip.PrefixFrom(g2, 128))) == 0
	})
	// Link-local groups (ND's solicited-node group) are not registered.
	sn := netip.MustParseAddr("ff02::1:ff00:2")
	lb, err := wire.AppendMLDv2Report(nil, []wire.GroupRecord{{Type: wire.ChangeToExclude, Group: sn}}, ll, all)
	if err != nil {
		t.Fatal(err)
	}
	l.ch <- lb
	waitFor(t, 3*time.Second, "link-local group counted", func() bool { return etr.McastStats().LocalGroups == 1 })
	// Malformed and corrupted reports are counted, not learned.
	bad := slices.Clone(b)
	bad[8] ^= 0xff
	l.ch <- []byte{0x22, 0, 0, 0}
	l.ch <- bad
	waitFor(t, 3*time.Second, "bad reports counted", func() bool { return etr.McastStats().BadReports == 2 })
	if n := len(etr.Memberships()); n != 1 {
		t.Fatalf("%d memberships, want the IPv6 (S,G) only", n)
	}
}

// TestLookupUnanswered: with no answer to the group-name lookup the ETR
// falls back to registering its unicast RLOC.
func TestLookupUnanswered(t *testing.T) {
	r := newRig(t)
	dead := listenUDP(t) // a Map-Resolver that never answers
	r.tweak = func(c *MulticastConfig) {
		c.Retries = 2
		c.RetryInterval = 50 * time.Millisecond
		c.Underlay = &UnderlayConfig{Method: UnderlayLookup, LookupIID: 9,
			MapResolvers: []netip.AddrPort{dead.LocalAddr().(*net.UDPAddr).AddrPort()}}
	}
	_, l := r.startETR("192.0.2.81")
	l.inject(t, join("10.1.1.1", "232.1.1.1"))
	r.waitRLE("unicast RLOC after the lookup gave up", addrs("192.0.2.81"))
}

// TestUnsolicitedNotifyRetransmitted: a subscriber that does not
// acknowledge gets the same Map-Notify again (same nonce) until it sends a
// Map-Notify-Ack, then no more.
func TestUnsolicitedNotifyRetransmitted(t *testing.T) {
	r := newRig(t)
	sub := listenUDP(t)
	req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.SGAddress(0, srcEID, grpEID)}}}
	b, _ := req.Append(nil)
	if _, err := sub.WriteToUDPAddrPort(b, r.ms.Addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9000)
	read := func(d time.Duration) ([]byte, bool) {
		sub.SetReadDeadline(time.Now().Add(d))
		n, _, err := sub.ReadFromUDPAddrPort(buf)
		return slices.Clone(buf[:n]), err == nil
	}
	if m, ok := read(2 * time.Second); !ok || m[0]>>4 != byte(wire.TypeMapReply) {
		t.Fatalf("no Map-Reply to the (S,G) request: %x", m)
	}
	_, l := r.startETR("192.0.2.99")
	l.inject(t, join("10.1.1.1", "232.1.1.1"))
	var first, second wire.MapNotify
	m1, ok := read(2 * time.Second)
	if !ok || first.Parse(m1) != nil {
		t.Fatal("no unsolicited Map-Notify")
	}
	if err := wire.VerifyAuth(m1, authDataOff, len(first.Auth.Data), first.Auth.Alg, []byte(mcKey.Secret)); err != nil {
		t.Fatalf("Map-Notify not signed with the multicast key: %v", err)
	}
	m2, ok := read(2 * time.Second)
	if !ok || second.Parse(m2) != nil || second.Nonce != first.Nonce {
		t.Fatal("unacknowledged Map-Notify not retransmitted with its nonce")
	}
	ack := wire.MapNotifyAck(second)
	ack.Auth = wire.NewAuth(mcKey.KeyID, mcKey.Alg, false)
	ab, err := ack.AppendSigned(nil, []byte(mcKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	sub.WriteToUDPAddrPort(ab, r.ms.Addr())
	waitFor(t, 2*time.Second, "ack counted", func() bool { return r.ms.McastStats().NotifyAcked == 1 })
	if m, ok := read(500 * time.Millisecond); ok {
		t.Fatalf("Map-Notify sent after the ack: %x", m)
	}
	if s := r.ms.McastStats(); s.NotifyRetries == 0 || s.NotifyGaveUp != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestTwoLevelTree: level-1 RTRs learn the level-0 RTR as their upstream
// candidate and join it; ETRs join the level-1 (leaf) RTRs, one each.
func TestTwoLevelTree(t *testing.T) {
	r := newRig(t)
	_, in0 := r.startRTR("203.0.113.10", 0)
	rtr1, in1 := r.startRTR("203.0.113.21", 1)
	_, in2 := r.startRTR("203.0.113.22", 1)
	for _, a := range []string{"198.51.100.31", "198.51.100.32"} {
		_, l := r.startETR(a)
		l.inject(t, join("10.1.1.1", "232.1.1.1"))
	}
	r.waitRLE("all merged", addrs("203.0.113.10", "203.0.113.21", "203.0.113.22", "198.51.100.31", "198.51.100.32"))
	waitFor(t, 5*time.Second, "level-1 RTRs under the level-0 RTR, one ETR each", func() bool {
		return slices.Equal(rtrKids(in0, "203.0.113.10"), addrs("203.0.113.21", "203.0.113.22")) &&
			len(rtrKids(in1, "203.0.113.21")) == 1 && len(rtrKids(in2, "203.0.113.22")) == 1
	})
	info, ok := rtr1.McastTree(0, srcEID, grpEID)
	if !ok || info.Level != 1 || !slices.Equal(info.Upstream, addrs("203.0.113.10")) || info.Parent != netip.MustParseAddr("203.0.113.10") {
		t.Fatalf("level-1 RTR view:\n%s", info)
	}
	// The level-0 RTR's installed RLE makes its plan copy to both level-1
	// RTRs and nothing else.
	in0.mu2.Lock()
	rle := in0.mc[len(in0.mc)-1].RLE
	in0.mu2.Unlock()
	p, err := replicate.NewPlanFromEntries(rle, replicate.PlanConfig{Role: replicate.RoleRTR, Level: replicate.LevelFromRLE,
		Self: []netip.Addr{netip.MustParseAddr("203.0.113.10")}, Template: func(netip.Addr) []byte { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Len() + len(p.Unsendable()); n != 2 {
		t.Fatalf("level-0 RTR plan: %d copies", n)
	}
}
