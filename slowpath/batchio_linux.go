package slowpath

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched UDP I/O with recvmmsg(2) and sendmmsg(2) on headers, socket
// addresses and buffers allocated once: a batch of datagrams costs one
// system call and nothing per datagram on the heap (golang.org/x/net's
// ReadBatch allocates an address per datagram). The core's sockets use it;
// it is exported for load generators (the Map-Request benchmarks).

// RecvBatch is a batch of receive slots on one UDP socket. One goroutine
// at a time uses it.
type RecvBatch struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	oobs  [][]byte
	n     int
	err   error
	fn    func(fd uintptr) bool
	// zones names the interfaces of scoped IPv6 sources by index.
	zones map[uint32]string
}

// NewRecvBatch returns a batch of slots receive slots on conn, each with a
// buffer of bufLen bytes for the datagram and oobLen bytes for its control
// messages.
func NewRecvBatch(conn *net.UDPConn, slots, bufLen, oobLen int) (*RecvBatch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &RecvBatch{rc: rc, hdrs: make([]unix.Mmsghdr, slots), iovs: make([]unix.Iovec, slots),
		names: make([]unix.RawSockaddrInet6, slots), bufs: make([][]byte, slots), oobs: make([][]byte, slots)}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, bufLen)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufLen)
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		if oobLen > 0 {
			b.oobs[i] = make([]byte, oobLen)
			h.Control = &b.oobs[i][0]
		}
	}
	b.fn = b.recv
	return b, nil
}

// recv is the raw read: false asks the poller to wait for the socket to
// become readable.
func (b *RecvBatch) recv(fd uintptr) bool {
	for i := range b.hdrs {
		h := &b.hdrs[i]
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		h.Hdr.SetControllen(len(b.oobs[i]))
		h.Hdr.Flags = 0
		h.Len = 0
	}
	n, e := mmsg(unix.SYS_RECVMMSG, fd, b.hdrs)
	if e == unix.EAGAIN {
		return false
	}
	b.n, b.err = n, errnoErr(e)
	return true
}

// Read waits for datagrams and fills the slots with as many as are queued
// (at least one); it returns how many. After an error no slot is valid.
func (b *RecvBatch) Read() (int, error) {
	b.n = 0
	if err := b.rc.Read(b.fn); err != nil {
		return 0, err
	}
	return b.n, b.err
}

// Len returns how many slots the latest Read filled.
func (b *RecvBatch) Len() int { return b.n }

// Slots returns the batch's size.
func (b *RecvBatch) Slots() int { return len(b.hdrs) }

// Datagram returns the i-th datagram of the latest Read: its bytes, its
// source, its control messages and whether it was longer than the buffer
// (MSG_TRUNC: data then holds its start). The slices are valid until the
// next Read.
func (b *RecvBatch) Datagram(i int) (data []byte, src netip.AddrPort, oob []byte, truncated bool) {
	h := &b.hdrs[i]
	n := min(int(h.Len), len(b.bufs[i]))
	nn := min(int(h.Hdr.Controllen), len(b.oobs[i]))
	return b.bufs[i][:n], b.sockaddrAddrPort(&b.names[i], h.Hdr.Namelen), b.oobs[i][:nn], h.Hdr.Flags&unix.MSG_TRUNC != 0
}

// sockaddrAddrPort decodes a socket address the kernel filled in; the
// zero AddrPort for another family. A scoped IPv6 address (link-local)
// gets its interface's name as zone, as the net package gives it, or
// the index when the interface is gone.
func (b *RecvBatch) sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	port := uint16(ntohs(&sa.Port))
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			ip = ip.WithZone(b.zone(sa.Scope_id))
		}
		return netip.AddrPortFrom(ip, port)
	}
	return netip.AddrPort{}
}

// zone returns the name of interface index id, remembered (one entry
// per interface that a scoped source arrived on).
func (b *RecvBatch) zone(id uint32) string {
	if z, ok := b.zones[id]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(id), 10)
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		z = ifi.Name
	}
	if b.zones == nil {
		b.zones = map[uint32]string{}
	}
	b.zones[id] = z
	return z
}

// ntohs reads a port stored in network byte order.
func ntohs(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// htons stores a port in network byte order.
func htons(p *uint16, v uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(v>>8), byte(v)
}

// SendBatch is a queue of datagrams for one UDP socket, sent with one
// sendmmsg(2) per Write. One goroutine at a time uses it.
type SendBatch struct {
	rc    syscall.RawConn
	is6   bool
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	n     int
	// state of the Write in progress
	off, sent int
	err       error
	fn        func(fd uintptr) bool
}

// NewSendBatch returns a queue of slots datagrams on conn, each buffer
// starting with bufCap bytes of capacity (a longer datagram grows it).
// is6 tells the socket's family: IPv6 sockets are sent sockaddr_in6.
func NewSendBatch(conn *net.UDPConn, is6 bool, slots, bufCap int) (*SendBatch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &SendBatch{rc: rc, is6: is6, hdrs: make([]unix.Mmsghdr, slots), iovs: make([]unix.Iovec, slots),
		names: make([]unix.RawSockaddrInet6, slots), bufs: make([][]byte, slots)}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, 0, max(1, bufCap))
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	b.fn = b.send
	return b, nil
}

// errZone is the error of a destination whose zone names no interface.
var errZone = errors.New("slowpath: unknown IPv6 zone")

// Add queues a copy of msg for dst and returns its slot; false when the
// queue is full or dst has no address of the socket's family (an IPv4
// address on an IPv6 socket is sent IPv4-mapped).
func (b *SendBatch) Add(dst netip.AddrPort, msg []byte) (int, bool) {
	if b.n == len(b.hdrs) || !b.setAddr(b.n, dst) {
		return 0, false
	}
	i := b.n
	b.bufs[i] = append(b.bufs[i][:0], msg...)
	b.iovs[i].Base = unsafe.SliceData(b.bufs[i][:cap(b.bufs[i])])
	b.iovs[i].SetLen(len(msg))
	b.n++
	return i, true
}

// setAddr writes dst into slot i's socket address.
func (b *SendBatch) setAddr(i int, dst netip.AddrPort) bool {
	ip := dst.Addr()
	h := &b.hdrs[i].Hdr
	sa := &b.names[i]
	if !b.is6 {
		if !ip.Unmap().Is4() {
			return false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		htons(&sa4.Port, dst.Port())
		h.Namelen = unix.SizeofSockaddrInet4
		return true
	}
	if !ip.IsValid() {
		return false
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		id, err := zoneIndex(z)
		if err != nil {
			return false
		}
		sa.Scope_id = id
	}
	htons(&sa.Port, dst.Port())
	h.Namelen = unix.SizeofSockaddrInet6
	return true
}

// zoneIndex returns the interface index an IPv6 zone names: a number, or
// an interface name.
func zoneIndex(z string) (uint32, error) {
	if n, err := strconv.ParseUint(z, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(z)
	if err != nil {
		return 0, errZone
	}
	return uint32(ifi.Index), nil
}

// Len returns how many datagrams are queued.
func (b *SendBatch) Len() int { return b.n }

// Slots returns the queue's size.
func (b *SendBatch) Slots() int { return len(b.hdrs) }

// send is the raw write: false asks the poller to wait for the socket to
// become writable.
func (b *SendBatch) send(fd uintptr) bool {
	n, e := mmsg(unix.SYS_SENDMMSG, fd, b.hdrs[b.off:b.n])
	if e == unix.EAGAIN {
		return false
	}
	b.sent, b.err = n, errnoErr(e)
	return true
}

// mmsg runs recvmmsg or sendmmsg (trap) on hdrs, again when a signal
// interrupted it; it returns how many datagrams went through, 0 with an
// error.
func mmsg(trap, fd uintptr, hdrs []unix.Mmsghdr) (int, syscall.Errno) {
	for {
		n, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
		if e != unix.EINTR {
			if e != 0 {
				n = 0
			}
			return int(n), e
		}
	}
}

// errnoErr is e as an error, nil for 0.
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Write sends the queued datagrams from slot off on; it returns how many
// the kernel took, and the error of the datagram that stopped it (slot
// off+sent) when it took fewer than all. It waits while the socket's send
// buffer is full.
func (b *SendBatch) Write(off int) (int, error) {
	if off >= b.n {
		return 0, nil
	}
	b.off, b.sent, b.err = off, 0, nil
	if err := b.rc.Write(b.fn); err != nil {
		return 0, err
	}
	return b.sent, b.err
}

// Reset empties the queue.
func (b *SendBatch) Reset() { b.n = 0 }
