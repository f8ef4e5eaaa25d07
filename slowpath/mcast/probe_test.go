package mcast

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

// TestParentProbeReplySource: a parent probe is answered only by a reply
// with its nonce from the parent's address; a reply from elsewhere is
// taken and counted but leaves the probe outstanding; once answered, or
// once the next round started, a reply falls through to the other roles.
func TestParentProbeReplySource(t *testing.T) {
	c, do := newLoop(t)
	parent := netip.MustParseAddr("192.0.2.70")
	clk := reqtest.NewClock(time.Unix(1000, 0))
	snd := &reqtest.Sender{Clock: clk}
	m := &Mcast{
		c: c,
		cfg: &slowpath.MulticastConfig{RLOC: netip.MustParseAddr("192.0.2.61"), ProbeMisses: 3, MaxRLE: 16,
			ControlAddr: func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, wire.ControlPort) }},
		local: map[slowpath.SGKey]*sgLocal{},
		probe: request.New(clk, snd, request.Config{Interval: time.Second, MaxTries: 1}),
	}
	m.res = request.New(clk, snd, request.Config{Interval: time.Second, MaxTries: 1})
	m.lk = m.res
	l := m.localFor(slowpath.NewSGKey(0, netip.MustParsePrefix("10.1.1.1/32"), netip.MustParsePrefix("232.1.1.1/32")))
	l.parent = parent
	round := func() wire.Nonce {
		t.Helper()
		do(m.probeParents)
		sent := snd.Take()
		if len(sent) != 1 || sent[0].Dst != netip.AddrPortFrom(parent, wire.ControlPort) {
			t.Fatalf("probes sent %+v", sent)
		}
		n, ok := slowpath.PeekNonce(sent[0].Msg)
		if !ok || !l.probeOut {
			t.Fatalf("probe without nonce (%v) or not outstanding (%v)", ok, l.probeOut)
		}
		return n
	}
	reply := func(src netip.AddrPort, n wire.Nonce) (taken bool) {
		b, err := (&wire.MapReply{Probe: true, Nonce: n}).Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		do(func() { taken = m.onMapReply(&slowpath.Msg{Src: src, Raw: b}) })
		return taken
	}
	n := round()
	if !reply(netip.MustParseAddrPort("192.0.2.99:4342"), n) || !l.probeOut {
		t.Fatalf("reply from another address answered the probe (taken, outstanding %v)", l.probeOut)
	}
	if s := m.probe.Stats(); s.WrongSource != 1 {
		t.Fatalf("wrong-source replies %d, want 1", s.WrongSource)
	}
	if !reply(netip.AddrPortFrom(parent, wire.ControlPort), n) || l.probeOut || l.probeMiss != 0 {
		t.Fatalf("parent's reply did not answer the probe: outstanding %v, misses %d", l.probeOut, l.probeMiss)
	}
	if reply(netip.AddrPortFrom(parent, wire.ControlPort), n) {
		t.Fatal("a second reply was taken")
	}
	// An unanswered probe is a miss at the next round, and its late reply
	// falls through.
	n = round()
	round()
	if l.probeMiss != 1 {
		t.Fatalf("misses %d, want 1", l.probeMiss)
	}
	if reply(netip.AddrPortFrom(parent, wire.ControlPort), n) {
		t.Fatal("the reply to the previous round's probe was taken")
	}
}
