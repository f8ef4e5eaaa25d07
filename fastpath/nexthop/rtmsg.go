package nexthop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The watcher reads route messages itself, not through the netlink
// library's Route: the library drops RTA_NH_ID (the nexthop object a route
// points at) and RTA_VIA (an IPv4 route's IPv6 gateway), and has no
// nexthop objects at all. The library still owns the sockets, requests and
// attribute walking (nl); only the fields the watcher uses are read here.

// Attributes x/sys does not name (linux/rtnetlink.h, linux/nexthop.h).
const (
	rtaNHID = 30 // RTA_NH_ID: u32, the nexthop object a route points at
	nhaFDB  = 11 // NHA_FDB: flag, a nexthop of the bridge's FDB
)

// rtRoute is what the watcher reads of a route message.
type rtRoute struct {
	prefix   netip.Prefix
	table    uint32
	typ      uint8 // RTN_*
	priority int
	tos      int
	cloned   bool // RTM_F_CLONED: a cache entry, not a route
	ifindex  int32
	gw       netip.Addr // RTA_GATEWAY or RTA_VIA; of the first path of a multipath route
	nhid     uint32     // RTA_NH_ID: the nexthop object it points at (0: none)
	paths    []member   // a multipath route's paths (RTA_MULTIPATH), when more than one, in the kernel's order
}

// errOtherFamily is parseRoute's error for a route neither IPv4 nor IPv6:
// MPLS, or a multicast routing cache entry (IPMR, IP6MR), which a dump of
// every family and the subscription bring too. Not a fault: such routes
// are skipped.
var errOtherFamily = errors.New("nexthop: route of family")

// parseRoute reads an RTM_NEWROUTE or RTM_DELROUTE message's payload.
func parseRoute(b []byte) (rtRoute, error) {
	if len(b) < unix.SizeofRtMsg {
		return rtRoute{}, fmt.Errorf("nexthop: route message of %d bytes", len(b))
	}
	m := nl.DeserializeRtMsg(b)
	r := rtRoute{table: uint32(m.Table), typ: m.Type, tos: int(m.Tos), cloned: m.Flags&unix.RTM_F_CLONED != 0}
	var bits int
	switch m.Family {
	case unix.AF_INET:
		r.prefix, bits = netip.PrefixFrom(netip.IPv4Unspecified(), 0), 32
	case unix.AF_INET6:
		r.prefix, bits = netip.PrefixFrom(netip.IPv6Unspecified(), 0), 128
	default:
		return rtRoute{}, fmt.Errorf("%w %d", errOtherFamily, m.Family)
	}
	if int(m.Dst_len) > bits {
		return rtRoute{}, fmt.Errorf("nexthop: route prefix length %d", m.Dst_len)
	}
	attrs, err := parseAttrs(b[unix.SizeofRtMsg:])
	if err != nil {
		return rtRoute{}, fmt.Errorf("nexthop: route attributes: %w", err)
	}
	for _, a := range attrs {
		switch a.typ {
		case unix.RTA_DST:
			d, ok := netip.AddrFromSlice(a.v)
			if !ok || d.BitLen() != bits {
				return rtRoute{}, fmt.Errorf("nexthop: route destination of %d bytes", len(a.v))
			}
			r.prefix = netip.PrefixFrom(d, int(m.Dst_len)).Masked()
		case unix.RTA_TABLE:
			if len(a.v) == 4 {
				r.table = binary.NativeEndian.Uint32(a.v)
			}
		case unix.RTA_PRIORITY:
			if len(a.v) == 4 {
				r.priority = int(binary.NativeEndian.Uint32(a.v))
			}
		case unix.RTA_OIF:
			if len(a.v) == 4 {
				r.ifindex = int32(binary.NativeEndian.Uint32(a.v))
			}
		case unix.RTA_GATEWAY, unix.RTA_VIA:
			r.gw = gateway(a.typ, a.v)
		case rtaNHID:
			if len(a.v) == 4 {
				r.nhid = binary.NativeEndian.Uint32(a.v)
			}
		case unix.RTA_MULTIPATH:
			if err := r.parsePaths(a.v); err != nil {
				return rtRoute{}, err
			}
		}
	}
	return r, nil
}

// parsePaths reads an RTA_MULTIPATH attribute's value: its struct
// rtnexthop entries, each with its interface, weight (rtnh_hops + 1) and
// gateway. The first gives r's interface and gateway too; paths holds
// them all when there are more than one. The kernel's flags (a path
// dead, its link down) are not read: it does not tell when they change,
// and the snapshots follow the links instead.
func (r *rtRoute) parsePaths(v []byte) error {
	for i := 0; len(v) > 0; i++ {
		n := 0
		if len(v) >= unix.SizeofRtNexthop {
			n = int(binary.NativeEndian.Uint16(v))
		}
		if n < unix.SizeofRtNexthop || n > len(v) {
			return fmt.Errorf("nexthop: route's path %d of %d bytes in %d", i, n, len(v))
		}
		m := member{hop: nextHop{ifindex: int32(binary.NativeEndian.Uint32(v[4:8]))}, weight: uint32(v[3]) + 1}
		sub, err := parseAttrs(v[unix.SizeofRtNexthop:n])
		if err != nil {
			return fmt.Errorf("nexthop: route's path %d: %w", i, err)
		}
		for _, s := range sub {
			if s.typ == unix.RTA_GATEWAY || s.typ == unix.RTA_VIA {
				m.hop.gw = gateway(s.typ, s.v)
			}
		}
		if i == 0 {
			r.ifindex, r.gw = m.hop.ifindex, m.hop.gw
		}
		r.paths = append(r.paths, m)
		v = v[min(len(v), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	if len(r.paths) < 2 {
		r.paths = nil
	}
	return nil
}

// attr is a netlink attribute: its type (flags cleared) and value.
type attr struct {
	typ uint16
	v   []byte
}

// parseAttrs splits b into attributes. The library's nl.ParseRouteAttr
// panics on some malformed input (FuzzParseRtMessages found one), so the
// walk is checked here: each length covers its header and stays in b.
func parseAttrs(b []byte) ([]attr, error) {
	var out []attr
	for len(b) > 0 {
		if len(b) < unix.SizeofRtAttr {
			return nil, fmt.Errorf("attribute header of %d bytes", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return nil, fmt.Errorf("attribute of %d bytes in %d", n, len(b))
		}
		out = append(out, attr{typ: binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER), v: b[unix.SizeofRtAttr:n]})
		b = b[min(len(b), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return out, nil
}

// gateway reads an RTA_GATEWAY (an address of the route's family) or an
// RTA_VIA (a family, then an address of that family: an IPv4 route's IPv6
// gateway); the zero Addr when malformed.
func gateway(typ uint16, v []byte) netip.Addr {
	if typ == unix.RTA_VIA {
		if len(v) < 2 {
			return netip.Addr{}
		}
		v = v[2:]
	}
	a, ok := netip.AddrFromSlice(v)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// nhObject is a kernel nexthop object (ip-nexthop(8)): one next hop, or a
// group of other objects' ids.
type nhObject struct {
	hop   nextHop    // a single next hop (reject: a blackhole)
	group []grpEntry // a group's members, in the kernel's order
}

// grpEntry is a member of a nexthop group: an object's id and its weight
// (1 and up).
type grpEntry struct {
	id     uint32
	weight uint32
}

// parseNexthop reads an RTM_NEWNEXTHOP or RTM_DELNEXTHOP message's payload.
// fdb is true for an object the bridge's FDB uses, never a route.
func parseNexthop(b []byte) (id uint32, o nhObject, fdb bool, err error) {
	if len(b) < unix.SizeofNhmsg {
		return 0, nhObject{}, false, fmt.Errorf("nexthop: nexthop message of %d bytes", len(b))
	}
	attrs, err := parseAttrs(b[unix.SizeofNhmsg:])
	if err != nil {
		return 0, nhObject{}, false, fmt.Errorf("nexthop: nexthop attributes: %w", err)
	}
	for _, a := range attrs {
		switch a.typ {
		case unix.NHA_ID:
			if len(a.v) == 4 {
				id = binary.NativeEndian.Uint32(a.v)
			}
		case unix.NHA_GROUP:
			for v := a.v; len(v) >= 8; v = v[8:] { // struct nexthop_grp: id, weight - 1, its high byte (Linux 6.12), reserved
				o.group = append(o.group, grpEntry{id: binary.NativeEndian.Uint32(v), weight: (uint32(v[5])<<8 | uint32(v[4])) + 1})
			}
		case unix.NHA_BLACKHOLE:
			o.hop.reject = true
		case unix.NHA_OIF:
			if len(a.v) == 4 {
				o.hop.ifindex = int32(binary.NativeEndian.Uint32(a.v))
			}
		case unix.NHA_GATEWAY:
			o.hop.gw = gateway(unix.RTA_GATEWAY, a.v)
		case nhaFDB:
			fdb = true
		}
	}
	if id == 0 {
		return 0, nhObject{}, false, errors.New("nexthop: nexthop message without an id")
	}
	return id, o, fdb, nil
}

// rtEvent is one message of the route subscription: a route or a nexthop
// object (obj), as the kernel sent it.
type rtEvent struct {
	typ   uint16
	route rtRoute
	id    uint32 // a nexthop object's
	obj   nhObject
	fdb   bool
}

// subscribeRoutes subscribes to the routes of both families and to the
// nexthop objects on one socket, so that an object's event and the routes'
// that follow it arrive in the kernel's order. It closes ch when the
// socket fails (cb says why) or done is closed.
func subscribeRoutes(ns *netns.NsHandle, ch chan<- rtEvent, done <-chan struct{}, cb func(error), rcvbuf int, force bool) error {
	s, err := nl.SubscribeAt(nsOf(ns), netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE, unix.RTNLGRP_NEXTHOP)
	if err != nil {
		return err
	}
	if rcvbuf != 0 {
		if err := s.SetReceiveBufferSize(rcvbuf, force); err != nil {
			s.Close()
			return err
		}
	}
	go func() {
		<-done
		s.Close()
	}()
	go func() {
		defer close(ch)
		for {
			msgs, from, err := s.Receive()
			if err != nil {
				cb(fmt.Errorf("receive: %w", err))
				return
			}
			if from.Pid != nl.PidKernel {
				continue
			}
			for _, m := range msgs {
				e, ok, err := rtEventOf(m)
				if err != nil {
					cb(err)
				}
				if ok {
					ch <- e
				}
			}
		}
	}()
	return nil
}

// rtEventOf reads message m of the route subscription; ok is false for
// one that is not an IPv4 or IPv6 route or a nexthop object (or is
// malformed: err).
func rtEventOf(m syscall.NetlinkMessage) (e rtEvent, ok bool, err error) {
	e.typ = m.Header.Type
	switch m.Header.Type {
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		if e.route, err = parseRoute(m.Data); errors.Is(err, errOtherFamily) {
			return rtEvent{}, false, nil
		}
	case unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
		e.id, e.obj, e.fdb, err = parseNexthop(m.Data)
	default:
		return rtEvent{}, false, nil
	}
	return e, err == nil, err
}

// dumpKind dumps the kernel's routes (RTM_GETROUTE) or nexthop objects
// (RTM_GETNEXTHOP) of namespace ns (nil: the current one) and calls f with
// each, and cb with what it could not read (skipped, as the subscription
// does: a dump failed for them would fail again at each resync); the error
// wraps netlink.ErrDumpInterrupted when the kernel's table changed
// meanwhile.
func dumpKind(ns *netns.NsHandle, req uint16, f func(rtEvent), cb func(error)) error {
	sh, err := openRoute(ns)
	if err != nil {
		return err
	}
	defer sh.Socket.Close()
	r := nl.NewNetlinkRequest(int(req), unix.NLM_F_DUMP)
	if req == unix.RTM_GETROUTE {
		r.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_UNSPEC}})
	} else {
		r.AddData(nhmsg(unix.AF_UNSPEC))
	}
	r.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sh}
	typ := uint16(unix.RTM_NEWROUTE)
	if req == unix.RTM_GETNEXTHOP {
		typ = unix.RTM_NEWNEXTHOP
	}
	err = r.ExecuteIter(unix.NETLINK_ROUTE, typ, func(b []byte) bool {
		e, ok, perr := rtEventOf(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ}, Data: b})
		if perr != nil {
			cb(perr)
		}
		if ok {
			f(e)
		}
		return true
	})
	if err != nil && req == unix.RTM_GETNEXTHOP && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
		return nil // a kernel without nexthop objects (before 5.3)
	}
	return err
}

// nhmsg is a struct nhmsg of one family (AF_UNSPEC: every family, in a
// dump request), the rest zero.
type nhmsg uint8

func (nhmsg) Len() int { return unix.SizeofNhmsg }

func (f nhmsg) Serialize() []byte {
	b := make([]byte, unix.SizeofNhmsg)
	b[0] = byte(f)
	return b
}
