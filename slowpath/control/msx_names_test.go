package control

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// Distinguished-name EIDs (AFI 17) across the interconnect: the provider's
// registered names are served, paged with the prefixes, clipped to the
// agreement and notified; the requester's copy answers for them.

// nameRecord is the registration of name in iid with RLOC 192.0.2.<rloc>.
func nameRecord(iid uint32, name string, ttl uint32, rloc byte) wire.Record {
	return wire.Record{TTL: ttl, EID: slowpath.NameAddress(iid, name),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true,
			Address: wire.IPAddress(netip.AddrFrom4([4]byte{192, 0, 2, rloc}))}}}
}

// msxRegisterNames registers hFROM..hTO-1.d2.example in iid.
func msxRegisterNames(t testing.TB, p *Engine, iid uint32, from, to int, ttl uint32, rloc byte) {
	t.Helper()
	var recs []wire.Record
	for i := from; i < to; i++ {
		recs = append(recs, nameRecord(iid, fmt.Sprintf("h%d.d2.example", i), ttl, rloc))
	}
	msxRegisterRecords(t, p, recs)
}

// msxNameProvider starts a provider of n prefixes, names0 names in IID 0
// and names5 in IID 5, whose agreement shares 10/8 and *.d2.example in
// IID 0.
func msxNameProvider(t testing.TB, clk *fakeClock, n, names0, names5 int) *Engine {
	t.Helper()
	p := msxProvider(t, clk, n, netip.AddrPort{}, func(a *slowpath.MSXAgreement) {
		a.Filters = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
		a.Names = []slowpath.SiteName{{Name: "*.d2.example"}}
	})
	msxRegisterNames(t, p, 0, 0, names0, 1440, 1)
	msxRegisterNames(t, p, 5, 0, names5, 1440, 1)
	return p
}

// msxSameNames compares the requester's copy of names with want (the
// provider's names for which keep is true), record by record.
func msxSameNames(t testing.TB, p, r *Engine, keep func(slowpath.EIDName) bool) int {
	t.Helper()
	cp, _ := r.MSXCopyNames("d2")
	want := map[slowpath.EIDName][]byte{}
	p.do(func() {
		p.ms.EachName(func(k slowpath.EIDName) {
			if keep(k) {
				rec, _ := p.ms.NameMapping(k)
				want[k], _ = rec.Append(nil)
			}
		})
	})
	if len(cp) != len(want) {
		t.Fatalf("copy holds %d names, want %d (%v)", len(cp), len(want), keysOf(cp))
	}
	for k, b := range want {
		if !bytes.Equal(cp[k], b) {
			t.Fatalf("%v: copy %x, provider %x", k, cp[k], b)
		}
	}
	return len(cp)
}

func keysOf(m map[slowpath.EIDName][]byte) []slowpath.EIDName {
	var out []slowpath.EIDName
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMSXNames: 300 prefixes and 300 names (IID 0) plus 20 names in IID
// 5 at the provider, whose agreement shares 10/8 and *.d2.example in IID
// 0; a requester asking for both pulls them in pages that mix prefixes and
// names (3 pages at most 255 records each: the second holds both), and holds exactly the shared names (not IID
// 5's), record for record. It answers a Map-Request for a copied name with
// the owner's record and TTL, and one for an unknown name negatively. A
// new name, an RLOC change and a withdrawal at the provider reach the copy
// by notification.
func TestMSXNames(t *testing.T) {
	clk := newFakeClock()
	p := msxNameProvider(t, clk, 300, 300, 20)
	r := msxRequester(t, clk, p.Addr(), func(a *slowpath.MSXAgreement) {
		a.PeerPrefixes = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
		a.PeerNames = []slowpath.SiteName{{Name: "*.d2.example"}}
	})
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })
	if n := msxSame(t, p, r, "d2"); n != 300 {
		t.Fatalf("%d prefixes copied", n)
	}
	iid0 := func(k slowpath.EIDName) bool { return k.IID == 0 }
	if n := msxSameNames(t, p, r, iid0); n != 300 {
		t.Fatalf("%d names copied", n)
	}
	a := msxAgreement(t, r)
	if a.Stats.PagesIn < 3 || a.Stats.RecordsIn != 600 || a.Stats.RecordsBad != 0 {
		t.Fatalf("requester %+v", a.Stats)
	}
	if pa := msxAgreement(t, p); pa.Stats.Clipped != 0 {
		t.Fatalf("provider clipped a scope inside the agreement: %+v", pa.Stats)
	}

	cl := newNameClient(t, r.Addr())
	eid := slowpath.NameAddress(0, "h7.d2.example")
	got, ok := cl.ask(0, eid, 5*time.Second)
	if !ok || got.TTL != 1440 || rlocOf(&got) != netip.MustParseAddr("192.0.2.1") || !addrEqual(&got.EID, &eid) {
		t.Fatalf("answer from the copy: %v %+v", ok, got)
	}
	unknown := slowpath.NameAddress(0, "nobody.d2.example")
	if got, ok := cl.ask(0, unknown, 5*time.Second); !ok || len(got.Locators) != 0 || got.Action != wire.ActionNativelyForward {
		t.Fatalf("unknown name: %v %+v", ok, got)
	}
	if n := msxAgreement(t, r).Stats.Answered; n != 1 {
		t.Fatalf("answered from the copy: %d", n)
	}

	notified := func(what string, n uint64) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool { return msxAgreement(t, r).Stats.NotifiesIn >= n })
		msxSameNames(t, p, r, iid0)
	}
	msxRegisterNames(t, p, 0, 300, 301, 1440, 1)
	notified("a new name", 1)
	msxRegisterNames(t, p, 0, 7, 8, 1440, 9)
	notified("an RLOC change", 2)
	if got, _ := cl.ask(0, eid, 5*time.Second); rlocOf(&got) != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("after the RLOC change: %+v", got)
	}
	msxRegisterNames(t, p, 0, 8, 9, 0, 1)
	notified("a withdrawal", 3)
	if cp, _ := r.MSXCopyNames("d2"); len(cp) != 300 || cp[slowpath.EIDName{Name: "h8.d2.example"}] != nil {
		t.Fatalf("after the withdrawal: %d names", len(cp))
	}
	// A change outside the subscription's scope (IID 5) sends nothing.
	msxRegisterNames(t, p, 5, 20, 21, 1440, 1)
	msxRegister(t, p, 300, 301, 1440, 1)
	notified("a prefix after it", 4)
	if n := msxAgreement(t, r).Stats.NotifiesIn; n != 4 {
		t.Fatalf("%d notifications, want 4", n)
	}
}

// TestMSXNameScope: a scope of exact names transfers exactly those names
// (no prefix, no other name); a scope asking for names beyond the
// agreement (a wider suffix, another instance-ID) is clipped to it and
// counted, and the copy holds only what the agreement shares.
func TestMSXNameScope(t *testing.T) {
	clk := newFakeClock()
	p := msxNameProvider(t, clk, 50, 30, 10)

	exact := msxRequester(t, clk, p.Addr(), func(a *slowpath.MSXAgreement) {
		a.Allow = []string{slowpath.MSXBulk}
		a.PeerNames = []slowpath.SiteName{{Name: "h3.d2.example"}, {Name: "h14.d2.example"}, {Name: "h99.d2.example"}}
	})
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, exact).Complete })
	if cp, _ := exact.MSXCopy("d2"); len(cp) != 0 {
		t.Fatalf("a name scope brought %d prefixes", len(cp))
	}
	msxSameNames(t, p, exact, func(k slowpath.EIDName) bool {
		return k.IID == 0 && (k.Name == "h3.d2.example" || k.Name == "h14.d2.example")
	})
	if pa := msxAgreement(t, p); pa.Stats.Clipped != 0 {
		t.Fatalf("exact names inside the agreement clipped: %+v", pa.Stats)
	}

	wide := msxRequester(t, clk, p.Addr(), func(a *slowpath.MSXAgreement) {
		a.Allow = []string{slowpath.MSXBulk}
		a.PeerNames = []slowpath.SiteName{{Name: "*.example"}, {IID: 5, Name: "*.d2.example"}}
	})
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, wide).Complete })
	msxSameNames(t, p, wide, func(k slowpath.EIDName) bool { return k.IID == 0 })
	if pa := msxAgreement(t, p); pa.Stats.Clipped != 1 {
		t.Fatalf("provider: clipped %d, want 1", pa.Stats.Clipped)
	}
}

// TestMSXCopyPersistedNames: a copy's names are kept in the state file: a
// requester restarted with its peer silent answers for them at once; one
// restarted with its peer answering drops a name withdrawn meanwhile.
func TestMSXCopyPersistedNames(t *testing.T) {
	clk := newFakeClock()
	p := msxNameProvider(t, clk, 10, 5, 0)
	state := filepath.Join(t.TempDir(), "ms.db")
	start := func(peer netip.AddrPort) *Engine {
		c := msConfig(siteConfig("s1", "172.16.0.0/16", true))
		c.MapServer.StateFile = state
		return msxRequesterWith(t, clk, c, peer, nil)
	}
	all := func(slowpath.EIDName) bool { return true }
	r := start(p.Addr())
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })
	msxSameNames(t, p, r, all)
	r.Close()
	msxRegisterNames(t, p, 0, 2, 3, 0, 1) // withdrawn meanwhile

	dead := newFakeSubscriber(t)
	r = start(dead.addr())
	if cp, _ := r.MSXCopyNames("d2"); len(cp) != 5 {
		t.Fatalf("restarted: %d names kept, want 5", len(cp))
	}
	eid := slowpath.NameAddress(0, "h4.d2.example")
	if got, ok := newNameClient(t, r.Addr()).ask(0, eid, 5*time.Second); !ok || got.TTL != 1440 || rlocOf(&got) != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("answer from the kept copy: %v %+v", ok, got)
	}
	r.Close()

	r = start(p.Addr())
	waitFor(t, 10*time.Second, "resync", func() bool { return msxAgreement(t, r).Complete })
	if n := msxSameNames(t, p, r, all); n != 4 {
		t.Fatalf("resynced copy holds %d names, want 4", n)
	}
}
