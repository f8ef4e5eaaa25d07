package gre

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// protoGRE is GRE's IP protocol number (RFC 2784 §3, IANA).
const protoGRE = 47

// DefaultMTU is the TUN's MTU when Config.MTU is 0: a 1500-byte underlay
// less an IPv6 header (40), the GRE header with checksum and key (12) and
// some room.
const DefaultMTU = 1440

// TunnelConfig is one tunnel to a peer: its underlay address and the
// point-to-point subnet of the inner addresses.
type TunnelConfig struct {
	// Remote is the peer's underlay address, the outer destination.
	Remote netip.Addr
	// Inner is this end's inner address with the tunnel subnet's length
	// (a /30 or /31; /127 for IPv6), put on the TUN.
	Inner netip.Prefix
	// Peer is the other end's inner address, inside Inner's subnet.
	Peer netip.Addr
	// Checksum negotiates the checksum (RFC 2784 §2.5): sent on every
	// packet, required on every packet received.
	Checksum bool
	// UseKey negotiates the key (RFC 2890 §2.1): Key is sent and a packet
	// without it, or with another, is dropped.
	UseKey bool
	// Key is the tunnel's key when UseKey.
	Key uint32
}

// Config is a Device: one TUN for the inner packets of all its tunnels and
// one raw socket bound to the local underlay address for the outer ones.
type Config struct {
	// Name is the TUN interface's name (at most 15 bytes).
	Name string
	// Local is this end's underlay address, the outer source.
	Local netip.Addr
	// MTU is the TUN's MTU; 0 means DefaultMTU.
	MTU int
	// Tunnels are the tunnels, one per peer.
	Tunnels []TunnelConfig
	// PointToPoint makes the device one tunnel's point-to-point link whose
	// routing is left to the kernel (an ALT router such as FRR's bgpd with
	// zebra, whose routes via a peer's inner address pick that peer's
	// TUN): it has exactly one tunnel; its raw socket is connected to the
	// tunnel's remote, so it sees that peer's GRE only and several such
	// devices share one underlay address; every packet the kernel routes
	// into the TUN goes into the tunnel whatever its destination; every
	// inner packet decapsulated goes to the TUN (the kernel forwards those
	// not addressed to it), the handler is not used.
	PointToPoint bool
}

// Validate checks c; errors start with path (the configuration key).
func (c *Config) Validate(path string) error {
	if n := len(c.Name); n == 0 || n > unix.IFNAMSIZ-1 {
		return fmt.Errorf("%s.name: %q: an interface name of 1 to 15 bytes", path, c.Name)
	}
	if !c.Local.IsValid() {
		return fmt.Errorf("%s.local: missing underlay address", path)
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65000) {
		return fmt.Errorf("%s.mtu: %d out of 576..65000", path, c.MTU)
	}
	if c.PointToPoint && len(c.Tunnels) != 1 {
		return fmt.Errorf("%s.tunnels: %d tunnels on a point-to-point device, want 1", path, len(c.Tunnels))
	}
	remotes := map[netip.Addr]bool{}
	for i, t := range c.Tunnels {
		p := fmt.Sprintf("%s.tunnels[%d]", path, i)
		switch {
		case !t.Remote.IsValid() || t.Remote.Is4() != c.Local.Is4():
			return fmt.Errorf("%s.remote: %v: an underlay address of the family of %v", p, t.Remote, c.Local)
		case remotes[t.Remote]:
			return fmt.Errorf("%s.remote: %v: a second tunnel to the same peer", p, t.Remote)
		case !t.Inner.IsValid() || t.Inner.Bits() < t.Inner.Addr().BitLen()-2:
			return fmt.Errorf("%s.inner: %v: an address with a /30 or /31 (/126, /127) subnet", p, t.Inner)
		case !t.Peer.IsValid() || !t.Inner.Contains(t.Peer) || t.Peer == t.Inner.Addr():
			return fmt.Errorf("%s.peer: %v: the other address of %v", p, t.Peer, t.Inner.Masked())
		}
		remotes[t.Remote] = true
	}
	return nil
}

// Drop reasons, the index of Stats.Dropped.
const (
	DropTruncated       = iota // header shorter than its flags announce
	DropVersion                // version not 0 (RFC 2784 §2.3.1)
	DropReserved0              // reserved0 bits 1-5 set (RFC 2784 §2.3)
	DropSequence               // sequence numbers (RFC 2890 §2.2), never negotiated
	DropBadChecksum            // checksum does not verify (RFC 2784 §2.5)
	DropChecksumUnasked        // a checksum the tunnel did not negotiate
	DropChecksumMissing        // no checksum on a tunnel that negotiated one
	DropKeyUnasked             // a key the tunnel did not negotiate
	DropKeyMismatch            // no key, or another key, on a tunnel with one
	DropProtocol               // a protocol type other than IPv4 and IPv6
	DropUnknownPeer            // from an underlay address with no tunnel
	DropBadInner               // inner packet not IP of the protocol type
	DropNotLocal               // inner destination neither local nor taken by the handler
	DropNoTunnel               // from the TUN to an address no tunnel reaches
	DropShortOuter             // outer IPv4 header truncated
	DropSendError              // the raw socket or the TUN refused a packet
	numDrops
)

var dropNames = [numDrops]string{"truncated", "version", "reserved0", "sequence", "bad-checksum",
	"checksum-not-negotiated", "checksum-missing", "key-not-negotiated", "key-mismatch",
	"unknown-protocol", "unknown-peer", "bad-inner", "not-local", "no-tunnel", "short-outer", "send-error"}

// DropName returns the name of drop reason r ("key-not-negotiated").
func DropName(r int) string {
	if r < 0 || r >= numDrops {
		return "unknown"
	}
	return dropNames[r]
}

// Stats are a device's counters.
type Stats struct {
	// Dropped counts the packets dropped, by reason (DropName).
	Dropped map[string]uint64
	// Tunnels are per-tunnel counters, in configuration order.
	Tunnels []TunnelStats
}

// TunnelStats are one tunnel's counters.
type TunnelStats struct {
	// Remote is the tunnel's peer underlay address.
	Remote netip.Addr
	// RxPackets and TxPackets count the inner packets decapsulated and
	// encapsulated.
	RxPackets, TxPackets uint64
	// RxBytes and TxBytes count their inner bytes.
	RxBytes, TxBytes uint64
}

// Tunnel is one configured tunnel of a Device.
type Tunnel struct {
	// Config is the tunnel's configuration.
	Config             TunnelConfig
	hdr                Header
	sa                 unix.Sockaddr
	rxp, txp, rxb, txb atomic.Uint64
}

// Handler takes an inner packet decapsulated from tunnel t that is not
// addressed to one of the device's inner addresses (ALT traffic, RFC 6836
// §3.3). pkt aliases the reader's buffer: it is valid only during the
// call. It reports whether it took the packet; one not taken is dropped
// as not-local. A PointToPoint device does not use it.
type Handler func(t *Tunnel, pkt []byte) bool

// Device is a set of GRE tunnels sharing one TUN and one raw socket.
type Device struct {
	cfg      Config
	tun, raw *os.File
	tunRC    interface {
		Read(func(uintptr) bool) error
	}
	rawRC interface {
		Read(func(uintptr) bool) error
	}
	rawFD    int
	tunnels  []*Tunnel
	byRemote map[netip.Addr]*Tunnel
	byPeer   map[netip.Addr]*Tunnel
	local    map[netip.Addr]bool
	handler  atomic.Pointer[Handler]
	drops    [numDrops]atomic.Uint64
	wg       sync.WaitGroup
	closed   atomic.Bool
}

// Open creates the TUN (its addresses set, up) and the raw socket in the
// calling thread's network namespace and starts the two reader
// goroutines. It needs CAP_NET_ADMIN and CAP_NET_RAW.
func Open(cfg Config) (*Device, error) {
	if err := cfg.Validate("gre"); err != nil {
		return nil, err
	}
	d := newDevice(cfg)
	if err := d.openTUN(); err != nil {
		return nil, err
	}
	if err := d.openRaw(); err != nil {
		d.tun.Close()
		return nil, err
	}
	d.wg.Add(2)
	go d.readTUN()
	go d.readRaw()
	return d, nil
}

// newDevice builds the device's tables from a valid cfg, without opening
// anything.
func newDevice(cfg Config) *Device {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	d := &Device{cfg: cfg, byRemote: map[netip.Addr]*Tunnel{}, byPeer: map[netip.Addr]*Tunnel{}, local: map[netip.Addr]bool{}}
	for _, tc := range cfg.Tunnels {
		t := &Tunnel{Config: tc, hdr: Header{Checksum: tc.Checksum, HasKey: tc.UseKey, Key: tc.Key}}
		if tc.Remote.Is4() {
			t.sa = &unix.SockaddrInet4{Addr: tc.Remote.As4()}
		} else {
			t.sa = &unix.SockaddrInet6{Addr: tc.Remote.As16()}
		}
		d.tunnels = append(d.tunnels, t)
		d.byRemote[tc.Remote] = t
		d.byPeer[tc.Peer] = t
		d.local[tc.Inner.Addr()] = true
	}
	return d
}

// ifreq is struct ifreq with the flags member (linux/if.h).
type ifreq struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// tunOpenError says why /dev/net/tun could not be opened and, when the
// node is hidden or refused (a service sandbox such as the packaged
// unit's PrivateDevices=yes, or a missing capability), what to do.
func tunOpenError(err error) error {
	hint := ""
	switch {
	case errors.Is(err, unix.ENOENT):
		hint = " (the device is missing or hidden: load the tun module, or under systemd install the alt.conf drop-in from /usr/share/doc/rloc/examples/rlocd.service.d/, docs/operating-privileges.md)"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		hint = " (not allowed: the ALT role needs CAP_NET_ADMIN and access to the device; under systemd install the alt.conf drop-in, docs/operating-privileges.md)"
	}
	return fmt.Errorf("gre: open /dev/net/tun: %w%s", err, hint)
}

func (d *Device) openTUN() error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return tunOpenError(err)
	}
	var req ifreq
	copy(req.name[:], d.cfg.Name)
	req.flags = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); e != 0 {
		unix.Close(fd)
		return fmt.Errorf("gre: create TUN %s: %w", d.cfg.Name, e)
	}
	d.tun = os.NewFile(uintptr(fd), "/dev/net/tun")
	rc, err := d.tun.SyscallConn()
	if err != nil {
		d.tun.Close()
		return err
	}
	d.tunRC = rc
	// A handle in the calling thread's namespace, where the TUN is.
	nl, err := netlink.NewHandle()
	if err != nil {
		d.tun.Close()
		return fmt.Errorf("gre: netlink: %w", err)
	}
	defer nl.Close()
	link, err := nl.LinkByName(d.cfg.Name)
	if err == nil {
		err = nl.LinkSetMTU(link, d.cfg.MTU)
	}
	for _, t := range d.tunnels {
		if err == nil {
			err = nl.AddrAdd(link, &netlink.Addr{IPNet: prefixNet(t.Config.Inner)})
		}
	}
	if err == nil && !d.inner6() {
		// Without IPv6 inner addresses the kernel's IPv6 chatter on the
		// TUN (router solicitations, MLD) would only be dropped as
		// no-tunnel. Best effort: /proc/sys may be read-only.
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+d.cfg.Name+"/disable_ipv6", []byte("1"), 0)
	}
	if err == nil {
		err = nl.LinkSetUp(link)
	}
	if err != nil {
		d.tun.Close()
		return fmt.Errorf("gre: set up TUN %s: %w", d.cfg.Name, err)
	}
	return nil
}

// inner6 reports whether a tunnel has IPv6 inner addresses.
func (d *Device) inner6() bool {
	for _, t := range d.tunnels {
		if t.Config.Inner.Addr().Is6() {
			return true
		}
	}
	return false
}

// prefixNet is p as a net.IPNet keeping the address (not masked).
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (d *Device) openRaw() error {
	fam, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Addr: d.cfg.Local.As4()})
	if d.cfg.Local.Is6() {
		fam, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: d.cfg.Local.As16()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protoGRE)
	if err != nil {
		return fmt.Errorf("gre: raw socket for protocol 47: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return fmt.Errorf("gre: bind the raw socket to %v: %w", d.cfg.Local, err)
	}
	if d.cfg.PointToPoint {
		// A connected raw socket gets only the packets from that address
		// (raw(7)): the other point-to-point devices on this underlay
		// address take the other peers' GRE.
		if err := unix.Connect(fd, d.tunnels[0].sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("gre: connect the raw socket to %v: %w", d.tunnels[0].Config.Remote, err)
		}
	}
	d.rawFD = fd
	d.raw = os.NewFile(uintptr(fd), "gre-raw")
	rc, err := d.raw.SyscallConn()
	if err != nil {
		d.raw.Close()
		return err
	}
	d.rawRC = rc
	return nil
}

// SetHandler sets the handler of inner packets not addressed to the device
// (nil: drop them).
func (d *Device) SetHandler(h Handler) {
	if h == nil {
		d.handler.Store(nil)
		return
	}
	d.handler.Store(&h)
}

// Tunnels returns the device's tunnels in configuration order.
func (d *Device) Tunnels() []*Tunnel { return d.tunnels }

// TunnelTo returns the tunnel whose peer's inner address is peer.
func (d *Device) TunnelTo(peer netip.Addr) *Tunnel { return d.byPeer[peer] }

// Name returns the TUN's interface name.
func (d *Device) Name() string { return d.cfg.Name }

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats {
	s := Stats{Dropped: map[string]uint64{}}
	for i := range d.drops {
		if n := d.drops[i].Load(); n != 0 {
			s.Dropped[dropNames[i]] = n
		}
	}
	for _, t := range d.tunnels {
		s.Tunnels = append(s.Tunnels, TunnelStats{Remote: t.Config.Remote,
			RxPackets: t.rxp.Load(), TxPackets: t.txp.Load(), RxBytes: t.rxb.Load(), TxBytes: t.txb.Load()})
	}
	return s
}

// Dropped returns the count of drop reason r.
func (d *Device) Dropped(r int) uint64 { return d.drops[r].Load() }

// Close closes the TUN (which removes it) and the raw socket and waits for
// the readers.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	err := errors.Join(d.tun.Close(), d.raw.Close())
	d.wg.Wait()
	return err
}

// Send encapsulates the inner IP packet pkt and sends it over t. buf is
// scratch space (reused by the caller to avoid an allocation per packet);
// it returns buf for the next call.
func (d *Device) Send(t *Tunnel, pkt, buf []byte) ([]byte, error) {
	h := t.hdr
	switch ipVersion(pkt) {
	case 4:
		h.Protocol = ProtoIPv4
	case 6:
		h.Protocol = ProtoIPv6
	default:
		d.drops[DropBadInner].Add(1)
		return buf, fmt.Errorf("gre: inner packet is not IP")
	}
	buf = Append(buf[:0], &h, pkt)
	if err := unix.Sendto(d.rawFD, buf, 0, t.sa); err != nil {
		d.drops[DropSendError].Add(1)
		return buf, fmt.Errorf("gre: send to %v: %w", t.Config.Remote, err)
	}
	t.txp.Add(1)
	t.txb.Add(uint64(len(pkt)))
	return buf, nil
}

func ipVersion(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	return int(p[0] >> 4)
}

// innerDst returns the destination of the IP packet p.
func innerDst(p []byte) (netip.Addr, bool) {
	switch ipVersion(p) {
	case 4:
		if len(p) >= 20 {
			return netip.AddrFrom4([4]byte(p[16:20])), true
		}
	case 6:
		if len(p) >= 40 {
			return netip.AddrFrom16([16]byte(p[24:40])), true
		}
	}
	return netip.Addr{}, false
}

func (d *Device) readTUN() {
	defer d.wg.Done()
	buf := make([]byte, 65536)
	out := make([]byte, 0, 65536+64)
	for {
		var n int
		var rerr error
		err := d.tunRC.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return rerr != unix.EAGAIN
		})
		if err != nil || (rerr != nil && rerr != unix.EINTR) {
			return // closed
		}
		if rerr != nil {
			continue
		}
		pkt := buf[:n]
		dst, ok := innerDst(pkt)
		if !ok {
			d.drops[DropBadInner].Add(1)
			continue
		}
		t := d.byPeer[dst]
		if d.cfg.PointToPoint {
			t = d.tunnels[0]
		}
		if t == nil {
			d.drops[DropNoTunnel].Add(1)
			continue
		}
		out, _ = d.Send(t, pkt, out)
	}
}

func (d *Device) readRaw() {
	defer d.wg.Done()
	buf := make([]byte, 65536)
	v4 := d.cfg.Local.Is4()
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := d.rawRC.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil || (rerr != nil && rerr != unix.EINTR) {
			return // closed
		}
		if rerr != nil {
			continue
		}
		var src netip.Addr
		pkt := buf[:n]
		if v4 {
			// A raw IPv4 socket gets the IP header too (raw(7)).
			if n < 20 || int(pkt[0]&0x0f)*4 > n {
				d.drops[DropShortOuter].Add(1)
				continue
			}
			src = netip.AddrFrom4([4]byte(pkt[12:16]))
			pkt = pkt[int(pkt[0]&0x0f)*4:]
		} else if sa, ok := from.(*unix.SockaddrInet6); ok {
			src = netip.AddrFrom16(sa.Addr)
		}
		d.receive(src, pkt)
	}
}

// receive handles one GRE packet (the outer IP header removed) from the
// underlay address src.
func (d *Device) receive(src netip.Addr, b []byte) {
	t := d.byRemote[src]
	if t == nil {
		d.drops[DropUnknownPeer].Add(1)
		return
	}
	var h Header
	inner, err := Parse(b, &h)
	if err != nil {
		d.drops[parseDrop(err)].Add(1)
		return
	}
	if r := t.check(&h, inner); r >= 0 {
		d.drops[r].Add(1)
		return
	}
	t.rxp.Add(1)
	t.rxb.Add(uint64(len(inner)))
	dst, _ := innerDst(inner)
	if d.local[dst] || d.cfg.PointToPoint {
		if _, err := d.tun.Write(inner); err != nil {
			d.drops[DropSendError].Add(1)
		}
		return
	}
	if h := d.handler.Load(); h != nil && (*h)(t, inner) {
		return
	}
	d.drops[DropNotLocal].Add(1)
}

// check applies what t negotiated to a parsed header and its payload; it
// returns a drop reason, or -1 to accept.
func (t *Tunnel) check(h *Header, inner []byte) int {
	switch {
	case h.Checksum && !t.Config.Checksum:
		return DropChecksumUnasked
	case !h.Checksum && t.Config.Checksum:
		return DropChecksumMissing
	case h.HasKey && !t.Config.UseKey:
		return DropKeyUnasked
	case t.Config.UseKey && (!h.HasKey || h.Key != t.Config.Key):
		return DropKeyMismatch
	}
	switch h.Protocol {
	case ProtoIPv4:
		if ipVersion(inner) != 4 || len(inner) < 20 || int(binary.BigEndian.Uint16(inner[2:])) > len(inner) {
			return DropBadInner
		}
	case ProtoIPv6:
		if ipVersion(inner) != 6 || len(inner) < 40 {
			return DropBadInner
		}
	default:
		return DropProtocol
	}
	return -1
}

func parseDrop(err error) int {
	switch err {
	case ErrVersion:
		return DropVersion
	case ErrReserved0:
		return DropReserved0
	case ErrSequence:
		return DropSequence
	case ErrBadChecksum:
		return DropBadChecksum
	}
	return DropTruncated
}
