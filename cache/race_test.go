package cache

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentReadersSeeWholeEntries runs two readers looking up
// continuously while the writer applies 10k updates and deletes. Every field
// of an entry is derived from one value v, so a half-built or half-updated
// entry would show inconsistent fields.
func TestConcurrentReadersSeeWholeEntries(t *testing.T) {
	tmpl := func(iid uint32, fam Family, r *RLOC) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b, iid)
		copy(b[4:], r.Addr.AsSlice())
		return b
	}
	c := New(Config{BuildTemplate: tmpl})
	const nPfx = 512
	pfx := make([]netip.Prefix, nPfx)
	for i := range pfx {
		pfx[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
	}
	mk := func(p netip.Prefix, v uint32) Update {
		rl := []RLOC{
			{Addr: netip.AddrFrom4([4]byte{172, byte(v >> 16), byte(v >> 8), byte(v)}), Priority: 1, Weight: 50, Reachable: true},
			{Addr: netip.AddrFrom4([4]byte{173, byte(v >> 16), byte(v >> 8), byte(v)}), Priority: 1, Weight: 50, Reachable: true},
		}
		return Update{Key: IPKey(3, p), TTL: v%1000 + 1, MapVersion: uint16(v & 0xfff), RLOCs: rl}
	}
	check := func(e *Entry, dst netip.Addr, h uint32) string {
		if !e.Key().Prefix.Contains(dst) {
			return "entry prefix does not contain the destination"
		}
		rs := e.RLOCs()
		if len(rs) != 2 {
			return "RLOC count"
		}
		a := rs[0].Addr.As4()
		v := uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		if e.TTL() != v%1000+1 || e.MapVersion() != uint16(v&0xfff) {
			return "TTL/map-version do not match the RLOC set"
		}
		b := rs[1].Addr.As4()
		if b[0] != 173 || [3]byte(b[1:]) != [3]byte(a[1:]) {
			return "second RLOC does not match the first"
		}
		x := e.Select(h)
		if x != &rs[0] && x != &rs[1] {
			return "Select returned an RLOC outside the set"
		}
		if string(x.Template[4:]) != string(x.Addr.AsSlice()) || binary.BigEndian.Uint32(x.Template) != 3 {
			return "template does not match its RLOC"
		}
		return ""
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seen [2]int
	errs := make(chan string, 2)
	for rd := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 1))
			for !stop.Load() {
				i := r.IntN(nPfx)
				dst := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(r.Uint32())})
				e, ok := c.Lookup(3, dst)
				if !ok {
					continue
				}
				seen[rd]++
				if msg := check(e, dst, r.Uint32()); msg != "" {
					errs <- msg
					return
				}
			}
		}()
	}
	r := rand.New(rand.NewPCG(99, 1))
	batch := make([]Update, 0, 10)
	for v := uint32(1); v <= 10_000; v++ {
		p := pfx[r.IntN(nPfx)]
		if r.IntN(4) == 0 {
			batch = append(batch, Update{Key: IPKey(3, p), Delete: true})
		} else {
			batch = append(batch, mk(p, v))
		}
		if len(batch) == cap(batch) {
			c.Apply(batch)
			batch = batch[:0]
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	if seen[0] == 0 || seen[1] == 0 {
		t.Fatalf("readers saw %v entries: no concurrency exercised", seen)
	}
	// Final state equals what the writer left: every entry still checks out.
	c.Walk(func(e *Entry) bool {
		if msg := check(e, e.Key().Prefix.Addr(), 1); msg != "" {
			t.Fatal(msg)
		}
		return true
	})
}
