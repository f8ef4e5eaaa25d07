package replicate

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// Golden vectors for HashGroup, computed independently of this package with
// Python's hashlib and ipaddress (the script is in docs/multicast.md), so
// that another implementation can check it agrees.
var hashGolden = []struct{ src, group, rng, want, digest string }{
	{"10.1.1.1", "232.1.1.1", "239.255.0.0/16", "239.255.93.45", "e25dc7a1c9817092cf7ad930ad445cb21e44d14d29be6d39d71e07d5f1945d2d"},
	{"", "232.1.1.1", "239.255.0.0/16", "239.255.241.21", "e7e5fd64d42e9d997805c2833ac49fabf7c40678648e472f77c06e39609cf115"},
	{"10.1.1.2", "232.1.1.1", "239.255.0.0/16", "239.255.230.132", "20cb821b6587433cb4729e8aa9c9b21a45d8b78a725f0ec50fbeb6470529e684"},
	{"", "233.252.0.7", "232.0.0.0/8", "232.92.89.51", "0d95afa84f2707f4a9b12fbb1723d07ac96d898ca7cebdf3d333211a045c5933"},
	{"10.1.1.1", "232.1.1.1", "239.1.2.3/32", "239.1.2.3", "e25dc7a1c9817092cf7ad930ad445cb21e44d14d29be6d39d71e07d5f1945d2d"},
	{"2001:db8:a::1", "ff3e::1234", "ff3e:0:0:0:0:0:8000:0/97", "ff3e::9627:6bf3", "a2349038e62f7ea56fac4c63501bb80c0c1ce13e984243c64651d14916276bf3"},
	{"", "ff3e::1234", "ff3e:0:0:0:0:0:8000:0/97", "ff3e::c8e4:8dbe", "b1af8785fcf66a8f1089b164af922770305a73db47bfc258b401c54d48e48dbe"},
	{"", "ff0e::1", "ff35::/16", "ff35:cb7e:2d5c:8020:afb6:17ec:30ac:9e7f", "53c1ad8c71c856054eb831e705f04462617bcb7e2d5c8020afb617ec30ac9e7f"},
	{"2001:db8:a::1", "ff3e::1234", "239.192.0.0/14", "239.195.107.243", "a2349038e62f7ea56fac4c63501bb80c0c1ce13e984243c64651d14916276bf3"},
	{"", "232.1.1.1", "ff3e::/20", "ff3e:678:648e:472f:77c0:6e39:609c:f115", "e7e5fd64d42e9d997805c2833ac49fabf7c40678648e472f77c06e39609cf115"},
}

func TestHashGroupGolden(t *testing.T) {
	for _, g := range hashGolden {
		var src netip.Addr
		if g.src != "" {
			src = netip.MustParseAddr(g.src)
		}
		grp, rng := netip.MustParseAddr(g.group), netip.MustParsePrefix(g.rng)
		d, err := GroupDigest(src, grp)
		if err != nil || hex.EncodeToString(d[:]) != g.digest {
			t.Errorf("(%s,%s): digest %x %v, want %s", g.src, g.group, d, err, g.digest)
		}
		got, err := HashGroup(src, grp, rng)
		if err != nil || got != netip.MustParseAddr(g.want) {
			t.Errorf("(%s,%s) in %s = %v %v, want %s", g.src, g.group, g.rng, got, err, g.want)
		}
		if !rng.Contains(got) {
			t.Errorf("%s outside %s", got, rng)
		}
	}
	// (*,G): an unspecified source is the same as none; mapped addresses
	// are IPv4.
	a, _ := HashGroup(netip.IPv4Unspecified(), netip.MustParseAddr("232.1.1.1"), netip.MustParsePrefix("239.255.0.0/16"))
	b, _ := HashGroup(netip.Addr{}, netip.MustParseAddr("::ffff:232.1.1.1"), netip.MustParsePrefix("239.255.0.0/16"))
	if a != b || a != netip.MustParseAddr("239.255.241.21") {
		t.Errorf("(*,G) variants %s %s", a, b)
	}
}

func TestHashGroupSpread(t *testing.T) {
	// 4096 sources into a /20 range (4096 groups): every result inside the
	// range, and a hash spreads them over many groups.
	rng := netip.MustParsePrefix("239.64.0.0/20")
	seen := map[netip.Addr]bool{}
	for i := range 4096 {
		g, err := HashGroup(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), netip.MustParseAddr("232.1.1.1"), rng)
		if err != nil || !rng.Contains(g) {
			t.Fatalf("%d: %s %v", i, g, err)
		}
		seen[g] = true
	}
	// Expected distinct values for 4096 balls in 4096 bins: 4096*(1-1/e) ~ 2589.
	if len(seen) < 2400 {
		t.Errorf("only %d distinct groups", len(seen))
	}
}

func TestHashGroupErrors(t *testing.T) {
	g4, g6 := netip.MustParseAddr("232.1.1.1"), netip.MustParseAddr("ff3e::1")
	cases := []struct {
		src, group netip.Addr
		rng        string
		want       error
	}{
		{netip.Addr{}, netip.MustParseAddr("10.0.0.1"), "239.0.0.0/8", ErrNotGroup},
		{netip.MustParseAddr("2001:db8::1"), g4, "239.0.0.0/8", ErrNotGroup},
		{netip.Addr{}, g4, "10.0.0.0/8", ErrBadRange},
		{netip.Addr{}, g4, "224.0.0.0/4", ErrBadRange},  // includes 224.0.0.0/24
		{netip.Addr{}, g4, "224.0.0.0/20", ErrBadRange}, // idem
		{netip.Addr{}, g4, "192.0.0.0/2", ErrBadRange},
		{netip.Addr{}, g6, "ff00::/8", ErrBadRange},  // scope not fixed
		{netip.Addr{}, g6, "ff02::/16", ErrBadRange}, // link-local
		{netip.Addr{}, g6, "ff31::/16", ErrBadRange}, // interface-local
		{netip.Addr{}, g6, "ff30::/16", ErrBadRange}, // reserved scope 0
		{netip.Addr{}, g6, "2001:db8::/32", ErrBadRange},
		{netip.Addr{}, g6, "::ffff:239.0.0.0/104", ErrBadRange},
	}
	for _, c := range cases {
		rng, _ := netip.ParsePrefix(c.rng)
		if g, err := HashGroup(c.src, c.group, rng); !errors.Is(err, c.want) {
			t.Errorf("(%s,%s) in %s = %s, %v; want %v", c.src, c.group, c.rng, g, err, c.want)
		}
	}
	if _, err := HashGroup(netip.Addr{}, g4, netip.Prefix{}); !errors.Is(err, ErrBadRange) {
		t.Errorf("invalid range: %v", err)
	}
	if i := PickGroup(netip.Addr{}, g4, 0); i != -1 {
		t.Errorf("PickGroup of 0 = %d", i)
	}
	if i := PickGroup(netip.Addr{}, netip.MustParseAddr("10.0.0.1"), 3); i != -1 {
		t.Errorf("PickGroup of a unicast G = %d", i)
	}
}

func TestPickGroup(t *testing.T) {
	// Golden: last 8 bytes of the (*,232.1.1.1) digest, 0x77c06e39609cf115, mod 3 and mod 7.
	g := netip.MustParseAddr("232.1.1.1")
	if i := PickGroup(netip.Addr{}, g, 3); i != int(uint64(0x77c06e39609cf115)%3) {
		t.Errorf("mod 3: %d", i)
	}
	if i := PickGroup(netip.Addr{}, g, 7); i != int(uint64(0x77c06e39609cf115)%7) {
		t.Errorf("mod 7: %d", i)
	}
	counts := make([]int, 4)
	for i := range 4000 {
		counts[PickGroup(netip.Addr{}, netip.AddrFrom4([4]byte{232, 0, byte(i >> 8), byte(i)}), 4)]++
	}
	for i, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("group %d picked %d of 4000 times", i, c)
		}
	}
}

func TestGroupName(t *testing.T) {
	cases := []struct {
		p    string
		name string
	}{
		{"224.1.1.1/32", "group-224.1.1.1"},
		{"224.1.0.0/16", "group-224.1.0.0/16"},
		{"224.1.2.3/16", "group-224.1.0.0/16"},
		{"ff3e::1234/128", "group-ff3e::1234"},
		{"ff3e::/96", "group-ff3e::/96"},
	}
	for _, c := range cases {
		p := netip.MustParsePrefix(c.p)
		if n := GroupName(p); n != c.name {
			t.Errorf("GroupName(%s) = %q, want %q", c.p, n, c.name)
		}
		back, err := ParseGroupName(c.name)
		if err != nil || back != p.Masked() {
			t.Errorf("ParseGroupName(%q) = %s, %v", c.name, back, err)
		}
	}
	for _, bad := range []string{"224.1.1.1", "grp-224.1.1.1", "group-", "group-10.0.0.1", "group-224.1.2.3/16",
		"group-224.1.0.0/40", "group-::ffff:224.1.1.1", "group-ff3e::1%eth0", "group-host.example"} {
		if p, err := ParseGroupName(bad); !errors.Is(err, ErrNotGroupName) {
			t.Errorf("ParseGroupName(%q) = %s, %v", bad, p, err)
		}
	}
}

func TestGroupNameEIDWire(t *testing.T) {
	// The lookup EID: IID LCAF (type 2) around AFI 17 "group-224.1.1.1\0".
	eid := GroupNameEID(5000, netip.MustParseAddr("224.1.1.1"))
	b, err := eid.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	name := "group-224.1.1.1\x00"
	want := []byte{0x40, 0x03, 0, 0, 2, 0, 0, byte(4 + 2 + len(name)), 0, 0, 0x13, 0x88, 0, 17}
	want = append(want, name...)
	if string(b) != string(want) {
		t.Fatalf("EID bytes\n% x\nwant\n% x", b, want)
	}
	var back wire.Address
	if _, err := back.Parse(b); err != nil {
		t.Fatal(err)
	}
	iid, in, ok := back.Unwrap()
	if !ok || iid != 5000 || in.AFI != wire.AFIDistName || in.Name != "group-224.1.1.1" {
		t.Errorf("parsed back %s", back)
	}
}

// roundTrip encodes m as a provider's Map-Reply record, parses the message
// and reads the record back.
func roundTrip(t *testing.T, r wire.Record) (GroupMapping, error) {
	t.Helper()
	reply := wire.MapReply{Nonce: wire.Nonce{1, 2, 3, 4, 5, 6, 7, 8}, Records: []wire.Record{r}}
	b, err := reply.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back wire.MapReply
	if err := back.Parse(b); err != nil {
		t.Fatal(err)
	}
	return ParseGroupRecord(&back.Records[0])
}

func TestGroupRecordRoundTrip(t *testing.T) {
	maps := []GroupMapping{
		// 1:1, IPv4.
		{IID: 9, GEID: netip.MustParsePrefix("224.1.1.1/32"), Groups: []UnderlayGroup{{Group: netip.MustParseAddr("239.7.7.7")}}},
		// A range (many:1), SSM underlay group plus a U-RLOC.
		{IID: 9, GEID: netip.MustParsePrefix("224.2.0.0/16"), Groups: []UnderlayGroup{
			{Source: netip.MustParseAddr("198.51.100.9"), Group: netip.MustParseAddr("232.9.9.9")}},
			Unicast: []netip.Addr{netip.MustParseAddr("198.51.100.20")}},
		// 1:many IPv6, mixed underlay families.
		{IID: 0, GEID: netip.MustParsePrefix("ff3e::1234/128"), Groups: []UnderlayGroup{
			{Group: netip.MustParseAddr("ff3e::8000:1")}, {Group: netip.MustParseAddr("239.8.8.8")}, {Group: netip.MustParseAddr("ff3e::8000:2")}}},
		// Only a U-RLOC.
		{IID: 1, GEID: netip.MustParsePrefix("ff3e::/96"), Unicast: []netip.Addr{netip.MustParseAddr("2001:db8::77")}},
	}
	for _, m := range maps {
		r, err := m.Record(1440, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		got, err := roundTrip(t, r)
		if err != nil {
			t.Fatalf("%s: %v", m.String(), err)
		}
		if got.String() != m.String() || !slices.Equal(got.Groups, m.Groups) || !slices.Equal(got.Unicast, m.Unicast) {
			t.Errorf("round trip\n got %s\nwant %s", got.String(), m.String())
		}
	}
}

func TestGroupRecordForms(t *testing.T) {
	eid := groupNameAddress(3, netip.MustParsePrefix("224.5.0.0/24"))
	loc := func(a wire.Address) wire.Locator { return wire.Locator{MPriority: 1, Address: a} }
	g1, g2 := netip.MustParseAddr("239.1.1.1"), netip.MustParseAddr("239.1.1.2")
	u1 := netip.MustParseAddr("198.51.100.1")
	// An RLE of a G-RLOC and a U-RLOC, an IID-wrapped G-RLOC, a unicast
	// locator with multicast priority 255 (skipped), and a duplicate group.
	r := wire.Record{EID: eid, Locators: []wire.Locator{
		loc(wire.RLEAddress(wire.RLENode{Level: 128, Address: wire.IPAddress(g1)}, wire.RLENode{Level: 128, Address: wire.IPAddress(u1)})),
		loc(wire.IIDAddress(3, g2)),
		{MPriority: 255, Address: wire.IPAddress(netip.MustParseAddr("198.51.100.99"))},
		loc(wire.IPAddress(g2)),
	}}
	m, err := roundTrip(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "[3]group-224.5.0.0/24 -> 239.1.1.1 239.1.1.2 u:198.51.100.1" {
		t.Errorf("mapping %s", got)
	}
	bad := []struct {
		name string
		r    wire.Record
		want error
	}{
		{"ip eid", wire.Record{EID: wire.IPAddress(g1), Locators: []wire.Locator{loc(wire.IPAddress(g1))}}, ErrNotGroupName},
		{"other name", wire.Record{EID: wire.NameAddress("etr-1"), Locators: []wire.Locator{loc(wire.IPAddress(g1))}}, ErrNotGroupName},
		{"negative", wire.Record{EID: eid}, ErrNoGroupMapping},
		{"only mpri 255", wire.Record{EID: eid, Locators: []wire.Locator{{MPriority: 255, Address: wire.IPAddress(g1)}}}, ErrNoGroupMapping},
		{"name locator", wire.Record{EID: eid, Locators: []wire.Locator{loc(wire.NameAddress("x"))}}, ErrRLEAddress},
		{"link-local group", wire.Record{EID: eid, Locators: []wire.Locator{loc(wire.IPAddress(netip.MustParseAddr("224.0.0.9")))}}, ErrNotGroup},
		{"loopback u-rloc", wire.Record{EID: eid, Locators: []wire.Locator{loc(wire.IPAddress(netip.MustParseAddr("127.0.0.1")))}}, ErrRLEAddress},
		{"(S,G) prefix", wire.Record{EID: eid, Locators: []wire.Locator{loc(wire.SGAddress(0,
			netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("232.1.1.1/32")))}}, ErrRLEAddress},
		{"(S,G) multicast source", wire.Record{EID: eid, Locators: []wire.Locator{loc(wire.SGAddress(0,
			netip.MustParsePrefix("232.2.2.2/32"), netip.MustParsePrefix("232.1.1.1/32")))}}, ErrRLEAddress},
	}
	for _, c := range bad {
		if m, err := ParseGroupRecord(&c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: %s, %v; want %v", c.name, m.String(), err, c.want)
		}
	}
}

func TestGroupMap(t *testing.T) {
	gm := NewGroupMap()
	shared := []UnderlayGroup{{Group: netip.MustParseAddr("239.1.1.1")}}
	add := func(iid uint32, p string, groups []UnderlayGroup, uni ...string) {
		t.Helper()
		m := GroupMapping{IID: iid, GEID: netip.MustParsePrefix(p), Groups: groups}
		for _, u := range uni {
			m.Unicast = append(m.Unicast, netip.MustParseAddr(u))
		}
		if err := gm.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	// many:1: two ranges on one G-RLOC; 1:many: one range on two; m:n:
	// a range on two groups one of which is shared, plus a U-RLOC.
	add(7, "224.1.0.0/16", shared)
	add(7, "224.2.0.0/16", shared)
	add(7, "224.1.5.0/24", []UnderlayGroup{{Group: netip.MustParseAddr("239.2.2.1")}, {Group: netip.MustParseAddr("239.2.2.2")}})
	add(7, "224.3.0.0/16", []UnderlayGroup{{Group: netip.MustParseAddr("239.1.1.1")}, {Group: netip.MustParseAddr("239.3.3.3")}}, "198.51.100.5")
	add(8, "224.0.0.0/4", []UnderlayGroup{{Group: netip.MustParseAddr("239.9.9.9")}})
	add(7, "ff3e::/16", []UnderlayGroup{{Group: netip.MustParseAddr("ff3e::8000:1")}})
	look := func(iid uint32, g string) string {
		m, ok := gm.Lookup(iid, netip.MustParseAddr(g))
		if !ok {
			return "none"
		}
		return m.String()
	}
	cases := []struct {
		iid  uint32
		g    string
		want string
	}{
		{7, "224.1.9.9", "[7]group-224.1.0.0/16 -> 239.1.1.1"},
		{7, "224.2.0.1", "[7]group-224.2.0.0/16 -> 239.1.1.1"},
		{7, "224.1.5.77", "[7]group-224.1.5.0/24 -> 239.2.2.1 239.2.2.2"},
		{7, "224.3.1.1", "[7]group-224.3.0.0/16 -> 239.1.1.1 239.3.3.3 u:198.51.100.5"},
		{7, "224.4.1.1", "none"},
		{8, "224.4.1.1", "[8]group-224.0.0.0/4 -> 239.9.9.9"},
		{9, "224.1.9.9", "none"},
		{7, "ff3e::1", "[7]group-ff3e::/16 -> ff3e::8000:1"},
		{7, "::ffff:224.1.9.9", "[7]group-224.1.0.0/16 -> 239.1.1.1"},
	}
	for _, c := range cases {
		if got := look(c.iid, c.g); got != c.want {
			t.Errorf("Lookup(%d, %s) = %s, want %s", c.iid, c.g, got, c.want)
		}
	}
	// The Map-Server side: a group-name EID and a range-name EID.
	eid := GroupNameEID(7, netip.MustParseAddr("224.1.5.3"))
	if m, err := gm.LookupName(&eid); err != nil || m.GEID != netip.MustParsePrefix("224.1.5.0/24") {
		t.Errorf("LookupName(%s) = %v, %v", eid, m, err)
	}
	reid := groupNameAddress(7, netip.MustParsePrefix("224.1.128.0/17"))
	if m, err := gm.LookupName(&reid); err != nil || m.GEID != netip.MustParsePrefix("224.1.0.0/16") {
		t.Errorf("LookupName(range) = %v, %v", m, err)
	}
	neid := GroupNameEID(7, netip.MustParseAddr("224.9.9.9"))
	if _, err := gm.LookupName(&neid); !errors.Is(err, ErrNoGroupMapping) || !strings.Contains(err.Error(), "group-224.9.9.9") {
		t.Errorf("unregistered: %v", err)
	}
	ip := wire.IPAddress(netip.MustParseAddr("224.1.1.1"))
	if _, err := gm.LookupName(&ip); !errors.Is(err, ErrNotGroupName) {
		t.Errorf("IP EID: %v", err)
	}
	// 1:many: every ETR picks the same group, and both get used.
	m, _ := gm.Lookup(7, netip.MustParseAddr("224.1.5.1"))
	picked := map[netip.Addr]bool{}
	for i := range 64 {
		g := netip.AddrFrom4([4]byte{224, 1, 5, byte(i)})
		u1, ok1 := m.Pick(netip.Addr{}, g)
		u2, ok2 := m.Pick(netip.Addr{}, g)
		if !ok1 || !ok2 || u1 != u2 {
			t.Fatalf("Pick not deterministic for %s", g)
		}
		picked[u1.Group] = true
	}
	if len(picked) != 2 {
		t.Errorf("1:many picks %v", picked)
	}
	// Replace, remove, refuse.
	if gm.Len() != 6 || !gm.Remove(7, netip.MustParsePrefix("224.1.5.0/24")) || gm.Remove(7, netip.MustParsePrefix("224.1.5.0/24")) {
		t.Errorf("Remove")
	}
	if got := look(7, "224.1.5.77"); got != "[7]group-224.1.0.0/16 -> 239.1.1.1" {
		t.Errorf("after remove: %s", got)
	}
	if err := gm.Add(GroupMapping{IID: 7, GEID: netip.MustParsePrefix("10.0.0.0/8"), Groups: shared}); !errors.Is(err, ErrNotGroup) {
		t.Errorf("unicast G-EID: %v", err)
	}
	if err := gm.Add(GroupMapping{IID: 7, GEID: netip.MustParsePrefix("224.7.0.0/16")}); !errors.Is(err, ErrNoGroupMapping) {
		t.Errorf("empty mapping: %v", err)
	}
	if err := gm.Add(GroupMapping{IID: 7, GEID: netip.MustParsePrefix("224.7.0.0/16"), Groups: []UnderlayGroup{{Group: u("198.51.100.1")}}}); !errors.Is(err, ErrNotGroup) {
		t.Errorf("unicast G-RLOC: %v", err)
	}
}

func u(s string) netip.Addr { return netip.MustParseAddr(s) }
