package cache

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func rl(addr string, prio, weight uint8, up bool) RLOC {
	return RLOC{Addr: netip.MustParseAddr(addr), Priority: prio, Weight: weight, Reachable: up}
}

func installOne(t *testing.T, c *Cache, p string, rlocs ...RLOC) *Entry {
	t.Helper()
	k := IPKey(5, netip.MustParsePrefix(p))
	if res := c.Apply([]Update{{Key: k, TTL: 10, RLOCs: rlocs}}); res.Rejected != 0 {
		t.Fatalf("Apply: %v", res.Err)
	}
	e, ok := c.Lookup(5, netip.MustParsePrefix(p).Addr())
	if !ok {
		t.Fatalf("%s not found after insert", p)
	}
	return e
}

func TestSelectWeightSplit(t *testing.T) {
	c := New(Config{})
	e := installOne(t, c, "10.0.0.0/8",
		rl("192.0.2.1", 1, 70, true), rl("192.0.2.2", 1, 20, true), rl("192.0.2.3", 1, 10, true),
		rl("192.0.2.4", 2, 100, true))
	const flows = 100_000
	r := rand.New(rand.NewPCG(7, 7))
	count := map[netip.Addr]int{}
	for range flows {
		x := e.Select(r.Uint32())
		if x == nil {
			t.Fatal("Select returned nil with reachable RLOCs")
		}
		count[x.Addr]++
	}
	want := map[string]float64{"192.0.2.1": 0.70, "192.0.2.2": 0.20, "192.0.2.3": 0.10, "192.0.2.4": 0}
	for a, w := range want {
		got := float64(count[netip.MustParseAddr(a)]) / flows
		if got < w-0.02 || got > w+0.02 {
			t.Errorf("%s got %.4f of flows, want %.2f±0.02", a, got, w)
		}
	}
}

func TestSelectSequentialHashesSplit(t *testing.T) {
	// Flow hashes that differ only in their low bits still spread by weight.
	c := New(Config{})
	e := installOne(t, c, "10.0.0.0/8", rl("192.0.2.1", 1, 50, true), rl("192.0.2.2", 1, 50, true))
	n := 0
	for h := range uint32(10_000) {
		if e.Select(h).Addr == netip.MustParseAddr("192.0.2.1") {
			n++
		}
	}
	if n < 4800 || n > 5200 {
		t.Fatalf("sequential hashes: %d of 10000 on the first RLOC, want about half", n)
	}
}

func TestSelectFlowSticky(t *testing.T) {
	c := New(Config{})
	set := []RLOC{rl("192.0.2.1", 1, 30, true), rl("192.0.2.2", 1, 30, true), rl("192.0.2.3", 1, 40, true)}
	e := installOne(t, c, "10.1.0.0/16", set...)
	r := rand.New(rand.NewPCG(1, 9))
	hashes := make([]uint32, 10_000)
	first := make([]netip.Addr, len(hashes))
	for i := range hashes {
		hashes[i] = r.Uint32()
		first[i] = e.Select(hashes[i]).Addr
	}
	// Same set re-installed (a refresh with a new TTL and map-version), and
	// the same set on another prefix: every flow keeps its RLOC.
	c.Apply([]Update{{Key: IPKey(5, netip.MustParsePrefix("10.1.0.0/16")), TTL: 20, MapVersion: 3, RLOCs: set}})
	e2, _ := c.Lookup(5, netip.MustParseAddr("10.1.2.3"))
	if e2 == e {
		t.Fatal("refresh did not publish a new entry")
	}
	e3 := installOne(t, c, "10.2.0.0/16", set...)
	for i, h := range hashes {
		for _, x := range []*Entry{e, e2, e3} {
			if got := x.Select(h).Addr; got != first[i] {
				t.Fatalf("flow %#x moved from %v to %v", h, first[i], got)
			}
		}
	}
	// All three RLOCs were used.
	seen := map[netip.Addr]bool{}
	for _, a := range first {
		seen[a] = true
	}
	if len(seen) != 3 {
		t.Fatalf("flows used %d RLOCs, want 3", len(seen))
	}
}

func TestSelectPriorityFailover(t *testing.T) {
	c := New(Config{})
	cases := []struct {
		name string
		set  []RLOC
		want []string // allowed choices; empty = none
	}{
		{"best priority up", []RLOC{rl("192.0.2.1", 1, 50, true), rl("192.0.2.2", 1, 50, true), rl("192.0.2.3", 2, 100, true)}, []string{"192.0.2.1", "192.0.2.2"}},
		{"one of best down", []RLOC{rl("192.0.2.1", 1, 50, false), rl("192.0.2.2", 1, 50, true), rl("192.0.2.3", 2, 100, true)}, []string{"192.0.2.2"}},
		{"all best down", []RLOC{rl("192.0.2.1", 1, 50, false), rl("192.0.2.2", 1, 50, false), rl("192.0.2.3", 2, 100, true), rl("192.0.2.4", 3, 100, true)}, []string{"192.0.2.3"}},
		{"priority 255 never", []RLOC{rl("192.0.2.1", 1, 50, false), rl("192.0.2.5", 255, 100, true)}, nil},
		{"all down", []RLOC{rl("192.0.2.1", 1, 50, false), rl("192.0.2.2", 2, 50, false)}, nil},
		{"zero weights split equally", []RLOC{rl("192.0.2.1", 1, 0, true), rl("192.0.2.2", 1, 0, true)}, []string{"192.0.2.1", "192.0.2.2"}},
		{"zero weight beside nonzero", []RLOC{rl("192.0.2.1", 1, 0, true), rl("192.0.2.2", 1, 10, true)}, []string{"192.0.2.2"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := installOne(t, c, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), 0}), 24).String(), tc.set...)
			seen := map[string]bool{}
			for h := range uint32(2000) {
				x := e.Select(h * 2654435761)
				if x == nil {
					seen["none"] = true
					continue
				}
				seen[x.Addr.String()] = true
			}
			if len(tc.want) == 0 {
				if len(seen) != 1 || !seen["none"] {
					t.Fatalf("choices %v, want none", seen)
				}
				return
			}
			if len(seen) != len(tc.want) {
				t.Fatalf("choices %v, want exactly %v", seen, tc.want)
			}
			for _, w := range tc.want {
				if !seen[w] {
					t.Fatalf("choices %v, want %v", seen, tc.want)
				}
			}
		})
	}
}
