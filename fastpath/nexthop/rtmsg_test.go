package nexthop

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// rtMsg builds a route message's payload: the header and attributes.
func rtMsg(h unix.RtMsg, attrs ...*nl.RtAttr) []byte {
	b := (&nl.RtMsg{RtMsg: h}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

// nhMsg builds a nexthop message's payload.
func nhMsg(family uint8, attrs ...*nl.RtAttr) []byte {
	b := make([]byte, unix.SizeofNhmsg)
	b[0] = family
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func ipb(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// rtNexthop is a struct rtnexthop on interface ifindex followed by attrs.
func rtNexthop(ifindex int32, attrs ...*nl.RtAttr) []byte { return rtNexthopW(ifindex, 1, attrs...) }

// rtNexthopW is rtNexthop of weight w (rtnh_hops w-1).
func rtNexthopW(ifindex int32, w byte, attrs ...*nl.RtAttr) []byte {
	var sub []byte
	for _, a := range attrs {
		sub = append(sub, a.Serialize()...)
	}
	b := make([]byte, unix.SizeofRtNexthop, unix.SizeofRtNexthop+len(sub))
	binary.NativeEndian.PutUint16(b, uint16(unix.SizeofRtNexthop+len(sub)))
	b[3] = w - 1
	binary.NativeEndian.PutUint32(b[4:], uint32(ifindex))
	return append(b, sub...)
}

// path is a member of a multipath route's paths.
func path(gw string, ifindex int32, weight uint32) member {
	m := member{hop: nextHop{ifindex: ifindex}, weight: weight}
	if gw != "" {
		m.hop.gw = netip.MustParseAddr(gw)
	}
	return m
}

// badPath is a first path whose attribute claims more bytes than it has.
func badPath() []byte {
	b := append(rtNexthop(3), 0xff, 0x00, 0, 0)
	binary.NativeEndian.PutUint16(b, uint16(len(b)))
	return b
}

func via6(s string) []byte {
	return append(binary.NativeEndian.AppendUint16(nil, unix.AF_INET6), ipb(s)...)
}

// routeCase is a route message and what parseRoute makes of it (err: a
// part of the error's text).
type routeCase struct {
	name string
	msg  []byte
	want rtRoute
	err  string
}

func routeCases() []routeCase {
	v4 := unix.RtMsg{Family: unix.AF_INET, Dst_len: 24, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST}
	return []routeCase{
		{"gateway", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.1.2.0")), nl.NewRtAttr(unix.RTA_OIF, u32(7)),
			nl.NewRtAttr(unix.RTA_GATEWAY, ipb("10.0.0.1")), nl.NewRtAttr(unix.RTA_PRIORITY, u32(100)), nl.NewRtAttr(unix.RTA_TABLE, u32(254))),
			rtRoute{prefix: netip.MustParsePrefix("10.1.2.0/24"), table: 254, typ: unix.RTN_UNICAST, priority: 100, ifindex: 7,
				gw: netip.MustParseAddr("10.0.0.1")}, ""},
		{"v6-default-object", rtMsg(unix.RtMsg{Family: unix.AF_INET6, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Tos: 4},
			nl.NewRtAttr(rtaNHID, u32(42))),
			rtRoute{prefix: netip.MustParsePrefix("::/0"), table: 254, typ: unix.RTN_UNICAST, tos: 4, nhid: 42}, ""},
		{"multipath-via", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.9.9.0")),
			nl.NewRtAttr(unix.RTA_MULTIPATH, append(rtNexthop(3, nl.NewRtAttr(unix.RTA_VIA, via6("fe80::1"))),
				rtNexthop(4, nl.NewRtAttr(unix.RTA_GATEWAY, ipb("10.0.0.4")))...))),
			rtRoute{prefix: netip.MustParsePrefix("10.9.9.0/24"), table: 254, typ: unix.RTN_UNICAST, ifindex: 3,
				gw: netip.MustParseAddr("fe80::1"), paths: []member{path("fe80::1", 3, 1), path("10.0.0.4", 4, 1)}}, ""},
		{"multipath-weights", rtMsg(unix.RtMsg{Family: unix.AF_INET6, Dst_len: 48, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST},
			nl.NewRtAttr(unix.RTA_DST, ipb("2001:db8:9::")),
			nl.NewRtAttr(unix.RTA_MULTIPATH, slices.Concat(rtNexthopW(5, 1, nl.NewRtAttr(unix.RTA_GATEWAY, ipb("fe80::a"))),
				rtNexthopW(6, 3, nl.NewRtAttr(unix.RTA_GATEWAY, ipb("fe80::b"))), rtNexthopW(7, 255)))),
			rtRoute{prefix: netip.MustParsePrefix("2001:db8:9::/48"), table: 254, typ: unix.RTN_UNICAST, ifindex: 5,
				gw: netip.MustParseAddr("fe80::a"), paths: []member{path("fe80::a", 5, 1), path("fe80::b", 6, 3), path("", 7, 255)}}, ""},
		{"multipath-one", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.9.9.0")),
			nl.NewRtAttr(unix.RTA_MULTIPATH, rtNexthopW(4, 2, nl.NewRtAttr(unix.RTA_GATEWAY, ipb("10.0.0.4"))))),
			rtRoute{prefix: netip.MustParsePrefix("10.9.9.0/24"), table: 254, typ: unix.RTN_UNICAST, ifindex: 4,
				gw: netip.MustParseAddr("10.0.0.4")}, ""},
		{"host-bits-masked", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.1.2.3"))),
			rtRoute{prefix: netip.MustParsePrefix("10.1.2.0/24"), table: 254, typ: unix.RTN_UNICAST}, ""},
		{"cloned", rtMsg(unix.RtMsg{Family: unix.AF_INET6, Dst_len: 128, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Flags: unix.RTM_F_CLONED},
			nl.NewRtAttr(unix.RTA_DST, ipb("2001:db8::1"))),
			rtRoute{prefix: netip.MustParsePrefix("2001:db8::1/128"), table: 254, typ: unix.RTN_UNICAST, cloned: true}, ""},
		{"short", []byte{2, 24, 0}, rtRoute{}, "route message of 3 bytes"},
		{"family", rtMsg(unix.RtMsg{Family: unix.AF_BRIDGE}), rtRoute{}, "route of family 7"},
		{"length", rtMsg(unix.RtMsg{Family: unix.AF_INET, Dst_len: 33}), rtRoute{}, "prefix length 33"},
		{"dst-size", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("2001:db8::"))), rtRoute{}, "destination of 16 bytes"},
		{"truncated", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.1.2.0")))[:unix.SizeofRtMsg+6], rtRoute{}, "route attributes"},
		{"multipath-attrs", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.9.9.0")),
			nl.NewRtAttr(unix.RTA_MULTIPATH, badPath())), rtRoute{}, "route's path 0: "},
		{"multipath-size", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.9.9.0")),
			nl.NewRtAttr(unix.RTA_MULTIPATH, []byte{40, 0, 0, 0, 3, 0, 0, 0})), rtRoute{}, "path 0 of 40 bytes in 8"},
		{"multipath-second", rtMsg(v4, nl.NewRtAttr(unix.RTA_DST, ipb("10.9.9.0")),
			nl.NewRtAttr(unix.RTA_MULTIPATH, append(rtNexthop(3), 8, 0, 0))), rtRoute{}, "route's path 1 of 0 bytes in 3"},
	}
}

// TestParseRoute: the fields the watcher reads, the first path of a
// multipath route, an IPv4 route's IPv6 gateway (RTA_VIA), a route's
// nexthop object; malformed messages are errors that name the fault.
func TestParseRoute(t *testing.T) {
	for _, c := range routeCases() {
		got, err := parseRoute(c.msg)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %+v, %v; want an error saying %q", c.name, got, err, c.err)
			}
		case err != nil || !reflect.DeepEqual(got, c.want):
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

// nexthopCase is a nexthop message and what parseNexthop makes of it.
type nexthopCase struct {
	name string
	msg  []byte
	id   uint32
	obj  nhObject
	fdb  bool
	err  string
}

func nexthopCases() []nexthopCase {
	grp := func(es ...grpEntry) []byte { // struct nexthop_grp: id, weight - 1 in two bytes (low, high), reserved
		var b []byte
		for _, e := range es {
			b = append(append(b, u32(e.id)...), byte(e.weight-1), byte((e.weight-1)>>8), 0, 0)
		}
		return b
	}
	return []nexthopCase{
		{"gateway", nhMsg(unix.AF_INET, nl.NewRtAttr(unix.NHA_ID, u32(5)), nl.NewRtAttr(unix.NHA_OIF, u32(4)), nl.NewRtAttr(unix.NHA_GATEWAY, ipb("10.0.0.9"))),
			5, nhObject{hop: nextHop{gw: netip.MustParseAddr("10.0.0.9"), ifindex: 4}}, false, ""},
		{"group", nhMsg(0, nl.NewRtAttr(unix.NHA_ID, u32(20)), nl.NewRtAttr(unix.NHA_GROUP, grp(grpEntry{10, 1}, grpEntry{11, 3}, grpEntry{12, 300}))),
			20, nhObject{group: []grpEntry{{10, 1}, {11, 3}, {12, 300}}}, false, ""},
		{"blackhole", nhMsg(0, nl.NewRtAttr(unix.NHA_ID, u32(30)), nl.NewRtAttr(unix.NHA_BLACKHOLE, nil)),
			30, nhObject{hop: nextHop{reject: true}}, false, ""},
		{"fdb", nhMsg(unix.AF_INET6, nl.NewRtAttr(unix.NHA_ID, u32(7)), nl.NewRtAttr(unix.NHA_GATEWAY, ipb("2001:db8::7")), nl.NewRtAttr(nhaFDB, nil)),
			7, nhObject{hop: nextHop{gw: netip.MustParseAddr("2001:db8::7")}}, true, ""},
		{"no-id", nhMsg(0, nl.NewRtAttr(unix.NHA_OIF, u32(4))), 0, nhObject{}, false, "without an id"},
		{"short", []byte{2, 0}, 0, nhObject{}, false, "nexthop message of 2 bytes"},
		{"truncated", nhMsg(0, nl.NewRtAttr(unix.NHA_ID, u32(5)))[:unix.SizeofNhmsg+5], 0, nhObject{}, false, "nexthop attributes"},
	}
}

// TestRtEventOfOtherFamilies: routes of other families (MPLS, multicast
// routing cache entries), which a dump of every family brings, are
// skipped without an error; a malformed IPv4 route is an error.
func TestRtEventOfOtherFamilies(t *testing.T) {
	const ipmr = 128 // RTNL_FAMILY_IPMR
	for _, fam := range []uint8{unix.AF_MPLS, ipmr, ipmr + 1} {
		m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE},
			Data: rtMsg(unix.RtMsg{Family: fam, Dst_len: 32, Type: unix.RTN_MULTICAST})}
		if e, ok, err := rtEventOf(m); ok || err != nil {
			t.Errorf("family %d: %+v %v %v, want it skipped without an error", fam, e, ok, err)
		}
	}
	bad := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE}, Data: rtMsg(unix.RtMsg{Family: unix.AF_INET, Dst_len: 40})}
	if _, ok, err := rtEventOf(bad); ok || err == nil {
		t.Errorf("a /40 IPv4 route: ok %v, err %v; want an error", ok, err)
	}
}

// TestParseNexthop: a single next hop, a group, a blackhole, an FDB
// object; malformed messages are errors that name the fault.
func TestParseNexthop(t *testing.T) {
	for _, c := range nexthopCases() {
		id, obj, fdb, err := parseNexthop(c.msg)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %d %+v, %v; want an error saying %q", c.name, id, obj, err, c.err)
			}
			continue
		}
		if err != nil || id != c.id || obj.hop != c.obj.hop || !slices.Equal(obj.group, c.obj.group) || fdb != c.fdb {
			t.Errorf("%s: %d %+v fdb %v, %v; want %d %+v fdb %v", c.name, id, obj, fdb, err, c.id, c.obj, c.fdb)
		}
	}
}

// FuzzParseRtMessages: no route or nexthop message, however malformed,
// makes the parsers panic, and a route they accept has a valid prefix.
func FuzzParseRtMessages(f *testing.F) {
	for _, c := range routeCases() {
		f.Add(c.msg)
	}
	for _, c := range nexthopCases() {
		f.Add(c.msg)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseRoute(b); err == nil && !r.prefix.IsValid() {
			t.Fatalf("accepted %x with prefix %v", b, r.prefix)
		}
		_, _, _, _ = parseNexthop(b)
	})
}
