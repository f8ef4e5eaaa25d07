package discovery

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
)

// lsaEvent builds the notification of an area-0 opaque LSA of router rid.
func lsaEvent(kind ospfapi.EventKind, rid string, otype uint8, age uint16, body []byte) ospfapi.Event {
	return ospfapi.Event{Kind: kind, Area: netip.IPv4Unspecified(),
		Header: ospfapi.LSAHeader{Type: ospfapi.LSATypeOpaqueArea, ID: ospfapi.OpaqueLSAID(otype, 0),
			AdvRouter: netip.MustParseAddr(rid), Age: age}, Body: body}
}

func mrBody(t *testing.T, status Status, locs ...string) []byte {
	t.Helper()
	m := MSFD{Function: FunctionMapResolver, Status: status, Port: 4342}
	for _, l := range locs {
		m.Locators = append(m.Locators, netip.MustParseAddr(l))
	}
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTest is a component that is not started: the test feeds it
// notifications and reads what it hands the ITR.
func newTest(t *testing.T) (*Discovery, *[][]netip.AddrPort) {
	var changes [][]netip.AddrPort
	d := New(slowpath.DiscoveryConfig{MapResolvers: true, OpaqueType: 232}, nil, Options{OnChange: func(m, _ []netip.AddrPort) { changes = append(changes, m) }})
	return d, &changes
}

func aps(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

// TestFollowStatus: Map-Resolvers learned from TLVs of two routers are
// handed over in router-ID order; one whose status turns to disabled, then
// whose LSA is flushed, leaves the set; a Map-Server-only TLV and LSAs of
// other opaque types are not Map-Resolvers.
func TestFollowStatus(t *testing.T) {
	d, changes := newTest(t)
	ev := lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.2", 232, 0, mrBody(t, StatusEnabled, "192.0.2.2"))
	d.onLSA(&ev)
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", OpaqueTypeRI, 0, mrBody(t, StatusEnabled, "192.0.2.1", "2001:db8::1"))
	d.onLSA(&ev)
	ms := MSFD{Function: FunctionMapServer, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("192.0.2.9")}}
	msb, _ := ms.Append(nil)
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.9", 232, 0, msb)
	d.onLSA(&ev)
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.8", 1, 0, mrBody(t, StatusEnabled, "192.0.2.8")) // TE LSA
	d.onLSA(&ev)
	want := aps("192.0.2.1:4342", "[2001:db8::1]:4342", "192.0.2.2:4342")
	if got := d.MapResolvers(); !slices.Equal(got, want) {
		t.Fatalf("map-resolvers %v, want %v", got, want)
	}
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", OpaqueTypeRI, 0, mrBody(t, StatusDisabled, "192.0.2.1", "2001:db8::1"))
	d.onLSA(&ev)
	if got := (*changes)[len(*changes)-1]; !slices.Equal(got, aps("192.0.2.2:4342")) {
		t.Fatalf("after disabled: %v", got)
	}
	ev = lsaEvent(ospfapi.EventLSADelete, "10.0.0.2", 232, 3600, nil)
	d.onLSA(&ev)
	if got := (*changes)[len(*changes)-1]; len(got) != 0 {
		t.Fatalf("after flush: %v", got)
	}
	if got := d.MapServers(); !slices.Equal(got, aps("192.0.2.9:4342")) {
		t.Fatalf("map-servers %v", got)
	}
	if n := len(d.Entries()); n != 2 { // the disabled MR and the MS
		t.Fatalf("%d entries: %+v", n, d.Entries())
	}
	if s := d.Stats(); s.Updates != 4 || s.Deletes != 1 || s.Malformed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReplacementIsNotWithdrawal: ospfd reports an LSA replaced by a newer
// instance as a delete of the old one (age below MaxAge) and an update of
// the new one. The Map-Resolver stays in the set throughout (no change is
// handed over, it is still learned from the first time); a delete that no
// update follows withdraws it once replaceGrace has passed; a delete with
// MaxAge withdraws at once.
func TestReplacementIsNotWithdrawal(t *testing.T) {
	d, changes := newTest(t)
	body := mrBody(t, StatusEnabled, "192.0.2.1")
	ev := lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, body)
	d.onLSA(&ev)
	learnedAt := d.Entries()[0].Learned
	ev = lsaEvent(ospfapi.EventLSADelete, "10.0.0.1", 232, 12, body)
	d.onLSA(&ev)
	if got := d.MapResolvers(); !slices.Equal(got, aps("192.0.2.1:4342")) {
		t.Fatalf("map-resolvers %v right after the delete of a replaced instance", got)
	}
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, body)
	d.onLSA(&ev)
	d.applyDeletes(time.Now().Add(time.Hour))
	if len(*changes) != 1 || !d.Entries()[0].Learned.Equal(learnedAt) {
		t.Fatalf("changes %v, entries %+v after a replacement", *changes, d.Entries())
	}
	d.mu.Lock()
	next := d.nextDeadline(time.Now())
	d.mu.Unlock()
	if !next.IsZero() {
		t.Fatalf("a deadline %v is left after the replacement", next)
	}

	// A delete alone: withdrawn when the grace has passed, not before.
	ev = lsaEvent(ospfapi.EventLSADelete, "10.0.0.1", 232, 30, body)
	t0 := time.Now()
	d.onLSA(&ev)
	d.mu.Lock()
	next = d.nextDeadline(t0)
	d.mu.Unlock()
	if next.Before(t0.Add(replaceGrace)) || next.After(time.Now().Add(replaceGrace)) {
		t.Fatalf("delete applied at %v, want %v after it came", next.Sub(t0), replaceGrace)
	}
	d.applyDeletes(next.Add(-time.Millisecond))
	if len(d.MapResolvers()) != 1 {
		t.Fatal("withdrawn before the grace ran out")
	}
	d.applyDeletes(next)
	d.notify()
	if got := d.MapResolvers(); len(got) != 0 || len(*changes) != 2 || len((*changes)[1]) != 0 {
		t.Fatalf("after the grace: map-resolvers %v, changes %v", got, *changes)
	}

	// MaxAge: at once.
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, body)
	d.onLSA(&ev)
	ev = lsaEvent(ospfapi.EventLSADelete, "10.0.0.1", 232, 3600, nil)
	d.onLSA(&ev)
	if got := d.MapResolvers(); len(got) != 0 {
		t.Fatalf("map-resolvers %v after a MaxAge delete", got)
	}
	if s := d.Stats(); s.Updates != 3 || s.Deletes != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// TestMalformedIgnored: a malformed MSFD TLV is counted and ignored; the
// good TLV beside it is used, and an LSA with nothing usable withdraws
// what its router advertised before.
func TestMalformedIgnored(t *testing.T) {
	d, _ := newTest(t)
	good := mrBody(t, StatusEnabled, "192.0.2.1")
	bad := mrBody(t, StatusEnabled, "192.0.2.5")
	bad[5] = 77 // status
	ev := lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, append(append([]byte{}, bad...), good...))
	d.onLSA(&ev)
	if got := d.MapResolvers(); !slices.Equal(got, aps("192.0.2.1:4342")) {
		t.Fatalf("map-resolvers %v", got)
	}
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, append(bad, 0x80, 0, 0, 40)) // and broken framing
	d.onLSA(&ev)
	if got := d.MapResolvers(); len(got) != 0 {
		t.Fatalf("map-resolvers %v after an LSA with nothing usable", got)
	}
	if s := d.Stats(); s.Malformed != 3 {
		t.Fatalf("malformed %d, want 3", s.Malformed)
	}
}

// TestTimers: a Map-Resolver stops being usable when its unavailability
// timer (counted from the LSA's origination, now minus its age) runs out;
// a refresh of the same content does not move the deadline.
func TestTimers(t *testing.T) {
	d, _ := newTest(t)
	m := MSFD{Function: FunctionMapResolver, Status: StatusEnabled, Unavailable: 10 * time.Second,
		Locators: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	b, _ := m.Append(nil)
	ev := lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 4, b)
	d.onLSA(&ev)
	es := d.Entries()
	if len(es) != 1 || !es[0].Usable {
		t.Fatalf("entries %+v", es)
	}
	left := time.Until(es[0].UnavailableAt)
	if left > 6*time.Second || left < 5*time.Second {
		t.Fatalf("unavailable in %v, want about 6 s (10 s from an LSA 4 s old)", left)
	}
	ev = lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, b) // refreshed
	d.onLSA(&ev)
	if got := d.Entries()[0].UnavailableAt; !got.Equal(es[0].UnavailableAt) {
		t.Fatalf("refresh moved the deadline %v -> %v", es[0].UnavailableAt, got)
	}
	d.mu.Lock()
	usable := d.usable(es[0].UnavailableAt, FunctionMapResolver)
	next := d.nextDeadline(time.Now())
	d.mu.Unlock()
	if len(usable) != 0 || !next.Equal(es[0].UnavailableAt) {
		t.Fatalf("at the deadline: %v; next deadline %v", usable, next)
	}
}

// TestAdvert builds the TLV of a Map-Resolver node from its configuration.
func TestAdvert(t *testing.T) {
	cfg := slowpath.DiscoveryConfig{Functions: uint8(FunctionMapResolver | FunctionMapServer),
		Advertise: slowpath.DiscoveryAdvertise{Status: "disabled", Capabilities: []string{"subscribe"}, RebootTimer: 5 * time.Second}}
	m, err := Advert(&cfg, []netip.Addr{netip.MustParseAddr("192.0.2.100")}, 4342)
	if err != nil {
		t.Fatal(err)
	}
	if m.Function != FunctionMapResolver|FunctionMapServer || m.Status != StatusDisabled || m.Capabilities != CapSubscribe ||
		m.Port != 4342 || m.Reboot != 5*time.Second || len(m.Locators) != 1 {
		t.Fatalf("%+v", m)
	}
	if m, err := Advert(&slowpath.DiscoveryConfig{}, nil, 4342); m != nil || err != nil {
		t.Fatalf("an xTR advertises nothing: %v %v", m, err)
	}
}

// TestBounds: at most 16 TLVs of one LSA are kept; the rest are counted.
func TestBounds(t *testing.T) {
	d, _ := newTest(t)
	var body []byte
	for i := range 20 {
		body = append(body, mrBody(t, StatusEnabled, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String())...)
	}
	ev := lsaEvent(ospfapi.EventLSAUpdate, "10.0.0.1", 232, 0, body)
	d.onLSA(&ev)
	if n, s := len(d.Entries()), d.Stats(); n != 16 || s.Dropped != 4 {
		t.Fatalf("%d entries, %d dropped", n, s.Dropped)
	}
}
