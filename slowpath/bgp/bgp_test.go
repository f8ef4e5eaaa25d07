package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
)

// freePort returns a TCP port free on addr at the time of the call.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		testkit.Require(t, "a loopback TCP port on "+addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// recorder keeps what a speaker's handlers saw.
type recorder struct {
	mu    sync.Mutex
	best  map[Key]Route
	peers map[netip.Addr]SessionState
	log   []string
}

func newRecorder() *recorder {
	return &recorder{best: map[Key]Route{}, peers: map[netip.Addr]SessionState{}}
}

func (r *recorder) handlers() Handlers {
	return Handlers{
		Best: func(rt Route) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.log = append(r.log, fmt.Sprintf("%v withdrawn=%v", rt.Key(), rt.Withdrawn))
			if rt.Withdrawn {
				delete(r.best, rt.Key())
			} else {
				r.best[rt.Key()] = rt
			}
		},
		Session: func(p Peer) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.peers[p.Address] = p.State
		},
	}
}

func (r *recorder) route(p netip.Prefix) (Route, bool) {
	return r.key(Key{Prefix: p})
}

func (r *recorder) key(k Key) (Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.best[k]
	return rt, ok
}

// seen is a copy of the handlers' log.
func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *recorder) state(a netip.Addr) SessionState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[a]
}

// TestTwoSpeakers runs two embedded speakers on loopback addresses: an
// external session comes up, a prefix announced with communities and an
// extended community reaches the other side with the AS path prepended,
// and a withdrawal removes it there.
func TestTwoSpeakers(t *testing.T) {
	la, lb := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	pa, pb := freePort(t, la.String()), freePort(t, lb.String())
	ra, rb := newRecorder(), newRecorder()
	a, err := Start(Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), Listen: []netip.Addr{la}, Port: pa}, ra.handlers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	b, err := Start(Config{ASN: 65002, RouterID: netip.MustParseAddr("10.0.0.2"), Listen: []netip.Addr{lb}, Port: pb}, rb.handlers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	if err := a.AddNeighbor(Neighbor{Address: lb, ASN: 65002, Local: la, Port: pb, ConnectRetry: time.Second, IPv6: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddNeighbor(Neighbor{Address: la, ASN: 65001, Local: lb, Port: pa, ConnectRetry: time.Second, IPv6: true}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the session established on both sides", func() error {
		if sa, sb := ra.state(lb), rb.state(la); sa != StateEstablished || sb != StateEstablished {
			return fmt.Errorf("a sees %q, b sees %q", sa, sb)
		}
		return nil
	})

	ec := ExtCommunity{0x00, 0x02, 0xfd, 0xe9, 0, 0, 0, 7} // two-octet-AS route target 65001:7 (RFC 4360 §4)
	p4 := netip.MustParsePrefix("192.168.10.0/24")
	p6 := netip.MustParsePrefix("2001:db8:10::/48")
	for _, p := range []netip.Prefix{p4, p6} {
		if err := a.Announce(Route{Prefix: p, Communities: []uint32{65001<<16 | 100}, ExtCommunities: []ExtCommunity{ec}, HasMED: true, MED: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Announced(); !slices.Equal(got, []netip.Prefix{p4, p6}) {
		t.Fatalf("announced %v", got)
	}
	for _, p := range []netip.Prefix{p4, p6} {
		testkit.WaitFor(t, "b's best path for "+p.String(), func() error {
			if _, ok := rb.route(p); !ok {
				return fmt.Errorf("not yet; b saw %v", rb.seen())
			}
			return nil
		})
		r, _ := rb.route(p)
		if !slices.Equal(r.ASPath, []uint32{65001}) || r.Neighbor != la || !slices.Equal(r.ExtCommunities, []ExtCommunity{ec}) ||
			!slices.Equal(r.Communities, []uint32{65001<<16 | 100}) || !r.HasMED || r.MED != 5 {
			t.Fatalf("b's route %+v", r)
		}
		if p.Addr().Is4() && r.NextHop != la {
			t.Fatalf("next hop %v, want %v", r.NextHop, la)
		}
	}
	best, err := b.Best()
	if err != nil || len(best) != 2 || best[0].Prefix != p4 || best[1].Prefix != p6 {
		t.Fatalf("b.Best: %+v %v", best, err)
	}
	peers, err := b.Peers()
	if err != nil || len(peers) != 1 || peers[0].State != StateEstablished || peers[0].ASN != 65001 ||
		peers[0].RouterID != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("b.Peers: %+v %v", peers, err)
	}

	if err := a.Withdraw(p4); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the withdrawal at b", func() error {
		if _, ok := rb.route(p4); ok {
			return fmt.Errorf("still there; b saw %v", rb.seen())
		}
		return nil
	})
	if _, ok := rb.route(p6); !ok {
		t.Fatal("the other prefix went too")
	}
	if err := a.Withdraw(p4); err != nil {
		t.Fatalf("a second withdrawal: %v", err)
	}

	// The session ends when a's speaker stops: b sees it leave Established
	// and the routes learnt from a withdrawn.
	a.Stop()
	testkit.WaitFor(t, "b noticing the session down", func() error {
		if s := rb.state(la); s == StateEstablished {
			return fmt.Errorf("still %s", s)
		}
		if _, ok := rb.route(p6); ok {
			return fmt.Errorf("route still there")
		}
		return nil
	})
}

func TestValidate(t *testing.T) {
	good := Config{ASN: 1, RouterID: netip.MustParseAddr("10.0.0.1")}
	if err := good.Validate("alt.bgp"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{RouterID: good.RouterID}, "alt.bgp.asn"},
		{Config{ASN: 1, RouterID: netip.MustParseAddr("::1")}, "alt.bgp.router_id"},
		{Config{ASN: 1, RouterID: good.RouterID, Port: 70000}, "alt.bgp.port"},
	} {
		if err := c.cfg.Validate("alt.bgp"); err == nil || !strings.HasPrefix(err.Error(), c.want+":") {
			t.Errorf("want an error at %s, got %v", c.want, err)
		}
	}
	for _, c := range []struct {
		n    Neighbor
		want string
	}{
		{Neighbor{ASN: 1}, "n.address"},
		{Neighbor{Address: good.RouterID}, "n.asn"},
		{Neighbor{Address: good.RouterID, ASN: 1, HoldTime: time.Second}, "n.hold_time"},
	} {
		if err := c.n.Validate("n"); err == nil || !strings.HasPrefix(err.Error(), c.want+":") {
			t.Errorf("want an error at %s, got %v", c.want, err)
		}
	}
	if _, err := Start(Config{}, Handlers{}); err == nil {
		t.Fatal("Start with an empty config")
	}
}

// TestSummaryOnly: a speaker with a summary-only prefix advertises the
// aggregate and none of the more specifics inside it, but keeps them in its
// own RIB; prefixes outside it go out as usual.
func TestSummaryOnly(t *testing.T) {
	la, lb := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")
	pa, pb := freePort(t, la.String()), freePort(t, lb.String())
	rb := newRecorder()
	agg := netip.MustParsePrefix("10.0.0.0/14")
	a, err := Start(Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.3"), Listen: []netip.Addr{la}, Port: pa,
		SummaryOnly: []netip.Prefix{agg}}, Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	b, err := Start(Config{ASN: 65002, RouterID: netip.MustParseAddr("10.0.0.4"), Listen: []netip.Addr{lb}, Port: pb}, rb.handlers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	specific, outside := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.9.0.0/24")
	for _, p := range []netip.Prefix{specific, outside} {
		if err := a.Announce(Route{Prefix: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Announce(Route{Prefix: agg, AtomicAggregate: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddNeighbor(Neighbor{Address: lb, ASN: 65002, Local: la, Port: pb, ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddNeighbor(Neighbor{Address: la, ASN: 65001, Local: lb, Port: pa, ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the aggregate and the outside prefix at b", func() error {
		r, ok := rb.route(agg)
		if _, ok2 := rb.route(outside); !ok || !ok2 {
			return fmt.Errorf("b saw %v", rb.seen())
		}
		if !r.AtomicAggregate {
			return fmt.Errorf("aggregate without ATOMIC_AGGREGATE: %+v", r)
		}
		return nil
	})
	// The session is up and b has the routes a sent with the aggregate's
	// UPDATE; the specific was never among them.
	if _, ok := rb.route(specific); ok {
		t.Fatalf("b got the suppressed %v: %v", specific, rb.seen())
	}
	best, err := a.Best()
	if err != nil || len(best) != 3 {
		t.Fatalf("a's own RIB: %+v %v", best, err)
	}
}
