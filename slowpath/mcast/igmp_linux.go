package mcast

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/rloc-router/rloc/slowpath"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/wire"
)

// rawListener hears IGMP and MLD on one interface through an AF_PACKET
// socket (SOCK_DGRAM: from the IP header) with a BPF filter that passes
// IPv4 protocol 2 and IPv6 packets whose first header is hop-by-hop or
// ICMPv6; the MLD types are picked in user space after the extension
// headers. A packet socket sees every report whatever group it is sent
// to, with no group membership needed. Queries go out on raw IGMP and
// ICMPv6 sockets.
type rawListener struct {
	si      slowpath.SiteInterface
	ifindex int
	fd      int
	f       *os.File        // fd in the runtime poller: Close wakes Read
	rc      syscall.RawConn // of f
	q4, q6  int
	mu      sync.Mutex
	closed  bool
}

// membershipFilter is the classic BPF program of rawListener.
func membershipFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipTrue: 0, SkipFalse: 3},
		bpf.LoadAbsolute{Off: 9, Size: 1}, // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 2, SkipTrue: 5, SkipFalse: 6},
		bpf.RetConstant{Val: 0}, // not reached
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 0, SkipFalse: 4},
		bpf.LoadAbsolute{Off: 6, Size: 1}, // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 58, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: 65535},
		bpf.RetConstant{Val: 0},
	})
}

// OpenMembershipListener opens the raw-socket listener of a site interface
// (needs CAP_NET_RAW).
func OpenMembershipListener(si slowpath.SiteInterface) (slowpath.MembershipListener, error) {
	ifi, err := net.InterfaceByName(si.Name)
	if err != nil {
		return nil, err
	}
	prog, err := membershipFilter()
	if err != nil {
		return nil, err
	}
	// Protocol 0 receives nothing until bind names the protocol and the
	// interface, so no packet of another interface is queued first.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	l := &rawListener{si: si, ifindex: ifi.Index, fd: fd, q4: -1, q6: -1}
	l.f = os.NewFile(uintptr(fd), "packet:"+si.Name)
	if l.rc, err = l.f.SyscallConn(); err != nil {
		l.f.Close()
		return nil, err
	}
	fs := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		fs[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fp := unix.SockFprog{Len: uint16(len(fs)), Filter: &fs[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		l.Close()
		return nil, fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		l.Close()
		return nil, fmt.Errorf("bind %s: %w", si.Name, err)
	}
	// Query sockets are best effort: a listener still learns without them.
	if q, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_IGMP); err == nil {
		_ = unix.SetsockoptIPMreqn(q, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
		_ = unix.SetsockoptInt(q, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1)
		_ = unix.SetsockoptInt(q, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
		// Router Alert (RFC 2113), as RFC 3376 §4 requires on queries.
		_ = unix.SetsockoptString(q, unix.IPPROTO_IP, unix.IP_OPTIONS, "\x94\x04\x00\x00")
		l.q4 = q
	}
	if q, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err == nil {
		_ = unix.SetsockoptInt(q, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index)
		_ = unix.SetsockoptInt(q, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1)
		_ = unix.SetsockoptInt(q, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
		l.q6 = q
	}
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Interface implements slowpath.MembershipListener.
func (l *rawListener) Interface() slowpath.SiteInterface { return l.si }

// Read implements slowpath.MembershipListener.
func (l *rawListener) Read(b []byte) (int, netip.Addr, netip.Addr, bool, error) {
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := l.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), b, 0)
			return !errors.Is(rerr, unix.EAGAIN) && !errors.Is(rerr, unix.EINTR)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, os.ErrClosed) {
				return 0, netip.Addr{}, netip.Addr{}, false, slowpath.ErrClosed
			}
			return 0, netip.Addr{}, netip.Addr{}, false, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		off, end, src, dst, mld, ok := membershipPayload(b[:n])
		if !ok {
			continue
		}
		m := copy(b, b[off:end])
		return m, src, dst, mld, nil
	}
}

// membershipPayload finds the IGMP or MLD message in an IP packet.
func membershipPayload(p []byte) (off, end int, src, dst netip.Addr, mld, ok bool) {
	if len(p) < 20 {
		return
	}
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&15) * 4
		tot := int(binary.BigEndian.Uint16(p[2:4]))
		if p[9] != 2 || ihl < 20 || tot < ihl || tot > len(p) {
			return
		}
		return ihl, tot, netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), false, true
	case 6:
		if len(p) < 40 {
			return
		}
		end = 40 + int(binary.BigEndian.Uint16(p[4:6]))
		if end > len(p) {
			return
		}
		nh, o := p[6], 40
		for nh == 0 || nh == 60 { // hop-by-hop, destination options
			if o+8 > end {
				return
			}
			nh, o = p[o], o+8*(int(p[o+1])+1)
		}
		if nh != 58 || o >= end {
			return
		}
		switch p[o] {
		case wire.MLDQuery, wire.MLDv1Report, wire.MLDv1Done, wire.MLDv2Report:
			return o, end, netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), true, true
		}
	}
	return
}

// Query implements MembershipListener: an IGMPv3 and an MLDv2 query
// (RFC 3376 §4.1, RFC 3810 §5.1), general or for group.
func (l *rawListener) Query(group netip.Addr) error {
	var errs []error
	if l.q4 >= 0 && (!group.IsValid() || group.Is4()) {
		q := []byte{0x11, 100, 0, 0, 0, 0, 0, 0, 0x02, 125, 0, 0}
		dst := netip.MustParseAddr("224.0.0.1")
		if group.IsValid() {
			g := group.As4()
			copy(q[4:8], g[:])
			q[1] = 10
			dst = group
		}
		binary.BigEndian.PutUint16(q[2:], ^wire.Checksum(q, 0))
		errs = append(errs, unix.Sendto(l.q4, q, 0, &unix.SockaddrInet4{Addr: dst.As4()}))
	}
	if l.q6 >= 0 && (!group.IsValid() || group.Is6()) {
		q := make([]byte, 28)
		q[0] = wire.MLDQuery
		binary.BigEndian.PutUint16(q[4:], 10000)
		dst := netip.MustParseAddr("ff02::1")
		if group.IsValid() {
			g := group.As16()
			copy(q[8:24], g[:])
			binary.BigEndian.PutUint16(q[4:], 1000)
			dst = group
		}
		q[24], q[25] = 0x02, 125
		// The kernel fills in the ICMPv6 checksum of raw ICMPv6 sockets.
		errs = append(errs, unix.Sendto(l.q6, q, 0, &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(l.ifindex)}))
	}
	return errors.Join(errs...)
}

// Close implements slowpath.MembershipListener.
func (l *rawListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	// Closing the os.File wakes a Read parked in the poller; the fd
	// number is not reused while it is in use.
	err := l.f.Close()
	for _, q := range []int{l.q4, l.q6} {
		if q >= 0 {
			unix.Close(q)
		}
	}
	return err
}

// socketJoiner joins underlay groups with a UDP socket bound to the data
// port on the core interface: IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP (or the
// source-specific variants), so that the kernel sends the IGMP/MLD joins.
type socketJoiner struct {
	ifi    *net.Interface
	s4, s6 int
}

// NewSocketJoiner returns a slowpath.UnderlayJoiner (also an io.Closer) for the core
// interface ifname;
// its sockets bind port (4341 for the LISP data port) with SO_REUSEADDR
// and receive nothing themselves (the fast path reads the traffic).
func NewSocketJoiner(ifname string, port uint16) (slowpath.UnderlayJoiner, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	j := &socketJoiner{ifi: ifi, s4: -1, s6: -1}
	open := func(fam int) (int, error) {
		fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		_ = unix.BindToDevice(fd, ifname)
		var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
		if fam == unix.AF_INET6 {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			sa = &unix.SockaddrInet6{Port: int(port)}
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	if j.s4, err = open(unix.AF_INET); err != nil {
		return nil, fmt.Errorf("underlay join socket: %w", err)
	}
	if j.s6, err = open(unix.AF_INET6); err != nil {
		j.s6 = -1 // IPv6 may be disabled
	}
	return j, nil
}

// Join implements slowpath.UnderlayJoiner.
func (j *socketJoiner) Join(group, source netip.Addr) error { return j.op(group, source, true) }

// Leave implements slowpath.UnderlayJoiner.
func (j *socketJoiner) Leave(group, source netip.Addr) error { return j.op(group, source, false) }

func (j *socketJoiner) op(group, source netip.Addr, join bool) error {
	if group.Is4() {
		if source.IsValid() {
			opt := unix.IP_ADD_SOURCE_MEMBERSHIP
			if !join {
				opt = unix.IP_DROP_SOURCE_MEMBERSHIP
			}
			return setSourceMembership4(j.s4, opt, j.ifi.Index, group, source)
		}
		opt := unix.IP_ADD_MEMBERSHIP
		if !join {
			opt = unix.IP_DROP_MEMBERSHIP
		}
		return unix.SetsockoptIPMreqn(j.s4, unix.IPPROTO_IP, opt, &unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(j.ifi.Index)})
	}
	if j.s6 < 0 {
		return errors.New("no IPv6 socket for underlay joins")
	}
	opt := unix.IPV6_JOIN_GROUP
	if !join {
		opt = unix.IPV6_LEAVE_GROUP
	}
	return unix.SetsockoptIPv6Mreq(j.s6, unix.IPPROTO_IPV6, opt, &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(j.ifi.Index)})
}

// setSourceMembership4 joins or leaves (source, group) on the interface
// with struct ip_mreq_source (multiaddr, interface address, source).
func setSourceMembership4(fd, opt, ifindex int, group, source netip.Addr) error {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return err
	}
	var local [4]byte
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			copy(local[:], ipn.IP.To4())
			break
		}
	}
	g, s := group.As4(), source.As4()
	return unix.SetsockoptString(fd, unix.IPPROTO_IP, opt, string(g[:])+string(local[:])+string(s[:]))
}

// Close closes the joiner's sockets, which leaves every group joined.
func (j *socketJoiner) Close() error {
	for _, fd := range []int{j.s4, j.s6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	j.s4, j.s6 = -1, -1
	return nil
}
