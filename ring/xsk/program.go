package xsk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Mode selects what the steering program sends to the sockets.
type Mode uint32

// Steering modes (the values are the program's MODE_* constants).
const (
	// ModeOff passes everything to the kernel.
	ModeOff Mode = 0
	// ModeSite redirects IPv4/IPv6 not addressed to a local address; ARP,
	// ND/MLD, link-local traffic and traffic to local addresses pass.
	ModeSite Mode = 1
	// ModeCore redirects UDP to a local address with destination port 4341
	// (RFC 9300 §5.1), and 4789/4790 when enabled; everything else passes.
	ModeCore Mode = 2
)

// XDPMode selects how the program attaches to the interface.
type XDPMode int

// Attachment modes.
const (
	// XDPDriver attaches in the driver (native XDP, XDP_FLAGS_DRV_MODE).
	XDPDriver XDPMode = iota
	// XDPGeneric attaches in the generic skb path (XDP_FLAGS_SKB_MODE).
	XDPGeneric
)

func (m XDPMode) flags() int {
	if m == XDPGeneric {
		return unix.XDP_FLAGS_SKB_MODE
	}
	return unix.XDP_FLAGS_DRV_MODE
}

// ProgramConfig configures the steering program.
type ProgramConfig struct {
	Mode Mode
	// VXLAN also redirects UDP destination port 4789 (RFC 7348) in core mode.
	VXLAN bool
	// GPE also redirects UDP destination port 4790 (VXLAN-GPE) in core mode.
	GPE bool
}

// Stat indexes the program's per-action counters (enum steer_stat in
// bpf/steer.c).
type Stat int

// The program's counters.
const (
	StatRedirect      Stat = iota // sent to a socket
	StatPassNoXSK                 // matched, but no socket on the rx queue
	StatPassNotIP                 // neither IPv4 nor IPv6 (ARP, LLDP...)
	StatPassVLAN                  // 802.1Q / 802.1ad tagged
	StatPassLocal                 // site mode: to a local address
	StatPassControl               // site mode: link-local, ND/MLD, broadcast
	StatPassFragment              // no longer counted: core mode redirects UDP fragments to local RLOCs (kept so indexes stay stable)
	StatPassOther                 // core mode: not LISP data to a local RLOC
	StatPassMalformed             // truncated or bad version/IHL
	StatPassOff                   // mode off or no config
	StatOffload                   // site mode: encapsulated and redirected through an offload entry
	NumStats
)

var statNames = [NumStats]string{
	"redirect", "pass_no_xsk", "pass_not_ip", "pass_vlan", "pass_local",
	"pass_control", "pass_fragment", "pass_other", "pass_malformed", "pass_off",
	"offload",
}

// String returns the counter's name.
func (s Stat) String() string {
	if s < 0 || s >= NumStats {
		return fmt.Sprintf("stat(%d)", int(s))
	}
	return statNames[s]
}

// Stats holds the program's counters summed over CPUs, indexed by Stat.
type Stats [NumStats]uint64

// Program is rloc's XDP steering program, loaded with its maps. One Program
// serves one interface.
type Program struct {
	objs    steerObjects
	cfg     steerSteerConfig // what Configure and SetOffload wrote
	ifindex int
	flags   int
	progID  ebpf.ProgramID
}

// LoadProgram loads the steering program and configures it.
func LoadProgram(cfg ProgramConfig) (*Program, error) {
	if cfg.Mode > ModeCore {
		return nil, fmt.Errorf("xsk: unknown steering mode %d", cfg.Mode)
	}
	p := &Program{}
	if err := loadSteerObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("xsk: load steering program: %w", err)
	}
	if info, err := p.objs.RlocSteer.Info(); err == nil {
		p.progID, _ = info.ID()
	}
	if err := p.Configure(cfg); err != nil {
		p.objs.Close()
		return nil, err
	}
	return p, nil
}

// Configure changes the mode and flags of a loaded program (takes effect for
// the next frame).
func (p *Program) Configure(cfg ProgramConfig) error {
	c := p.cfg // the offload's epoch and seed stay
	c.Mode, c.Flags = uint32(cfg.Mode), 0
	if cfg.VXLAN {
		c.Flags |= 1
	}
	if cfg.GPE {
		c.Flags |= 2
	}
	if err := p.objs.Config.Put(uint32(0), c); err != nil {
		return fmt.Errorf("xsk: write program config: %w", err)
	}
	p.cfg = c
	return nil
}

// Attach attaches the program to the interface named ifname in the calling
// thread's network namespace, replacing any program already attached there
// (a crashed run's leftover included, in either mode).
func (p *Program) Attach(ifname string, mode XDPMode) error {
	if p.ifindex != 0 {
		return errors.New("xsk: program already attached")
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("xsk: attach: %w", err)
	}
	fd := p.objs.RlocSteer.FD()
	// Without XDP_FLAGS_UPDATE_IF_NOEXIST the kernel swaps a program already
	// attached in the same mode atomically.
	err = netlink.LinkSetXdpFdWithFlags(link, fd, mode.flags())
	if err != nil {
		// A leftover in the other mode blocks the attachment: remove
		// whatever is there and try once more.
		_ = netlink.LinkSetXdpFdWithFlags(link, -1, unix.XDP_FLAGS_SKB_MODE)
		_ = netlink.LinkSetXdpFdWithFlags(link, -1, unix.XDP_FLAGS_DRV_MODE)
		err = netlink.LinkSetXdpFdWithFlags(link, fd, mode.flags())
	}
	if err != nil {
		return fmt.Errorf("xsk: attach XDP program to %s: %w", ifname, err)
	}
	p.ifindex = link.Attrs().Index
	p.flags = mode.flags()
	return nil
}

// Detach removes the program from its interface if it is still the one
// attached there. It must run in the namespace Attach ran in.
func (p *Program) Detach() error {
	if p.ifindex == 0 {
		return nil
	}
	link, err := netlink.LinkByIndex(p.ifindex)
	p.ifindex = 0
	if err != nil {
		return fmt.Errorf("xsk: detach: %w", err)
	}
	if x := link.Attrs().Xdp; x == nil || !x.Attached || (p.progID != 0 && x.ProgId != uint32(p.progID)) {
		return nil // gone already, or replaced by someone else
	}
	if err := netlink.LinkSetXdpFdWithFlags(link, -1, p.flags); err != nil {
		return fmt.Errorf("xsk: detach XDP program: %w", err)
	}
	return nil
}

// Register steers frames of rx queue queue to the AF_XDP socket fd.
func (p *Program) Register(queue, fd int) error {
	if err := p.objs.Xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("xsk: register socket for queue %d: %w", queue, err)
	}
	return nil
}

// Unregister stops steering rx queue queue to a socket (its frames pass to
// the kernel). The kernel also drops the entry when the socket closes.
func (p *Program) Unregister(queue int) error {
	err := p.objs.Xsks.Delete(uint32(queue))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xsk: unregister queue %d: %w", queue, err)
	}
	return nil
}

// AddLocal adds a local address: the router's own (site mode passes traffic
// to it) or a local RLOC (core mode redirects LISP data to it).
func (p *Program) AddLocal(a netip.Addr) error {
	var err error
	switch {
	case a.Is4() || a.Is4In6():
		b := a.Unmap().As4()
		err = p.objs.LocalV4.Put(b, uint8(1))
	case a.Is6():
		b := a.As16()
		err = p.objs.LocalV6.Put(b, uint8(1))
	default:
		return fmt.Errorf("xsk: invalid local address %v", a)
	}
	if err != nil {
		return fmt.Errorf("xsk: add local address %v: %w", a, err)
	}
	return nil
}

// RemoveLocal removes a local address.
func (p *Program) RemoveLocal(a netip.Addr) error {
	var err error
	switch {
	case a.Is4() || a.Is4In6():
		b := a.Unmap().As4()
		err = p.objs.LocalV4.Delete(b)
	case a.Is6():
		b := a.As16()
		err = p.objs.LocalV6.Delete(b)
	default:
		return fmt.Errorf("xsk: invalid local address %v", a)
	}
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xsk: remove local address %v: %w", a, err)
	}
	return nil
}

// Stats reads the program's counters, summed over CPUs.
func (p *Program) Stats() (Stats, error) {
	var s Stats
	var per []uint64
	for i := range s {
		if err := p.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return s, fmt.Errorf("xsk: read stats: %w", err)
		}
		for _, v := range per {
			s[i] += v
		}
	}
	return s, nil
}

// Close detaches the program (see Detach) and frees it and its maps.
func (p *Program) Close() error {
	err := p.Detach()
	if cerr := p.objs.Close(); err == nil {
		err = cerr
	}
	return err
}

// xdpActNDOXmit is NETDEV_XDP_ACT_NDO_XMIT (enum netdev_xdp_act,
// include/uapi/linux/netdev.h): the device takes frames XDP programs
// redirect to it.
const xdpActNDOXmit = 4

// AcceptsRedirects reports whether the interface named ifname, in the
// calling thread's network namespace, takes frames that XDP programs
// redirect to it (NETDEV_XDP_ACT_NDO_XMIT in its xdp-features, read through
// the netdev generic netlink family). A veth takes them only while its peer
// runs an XDP program or has GRO on; a redirect to a device that does not
// take them drops the frame. known is false when the kernel does not say
// (no netdev family: before Linux 6.3).
func AcceptsRedirects(ifname string) (ok, known bool, err error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, false, fmt.Errorf("xsk: %w", err)
	}
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return false, false, nil // the kernel has no netdev family
	}
	const cmdDevGet, attrIfindex, attrXDPFeatures = 1, 1, 3
	req := nl.NewNetlinkRequest(int(fam.ID), 0)
	req.AddData(genlHeader{cmd: cmdDevGet, version: 1})
	req.AddData(nl.NewRtAttr(attrIfindex, nl.Uint32Attr(uint32(link.Attrs().Index))))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return false, false, fmt.Errorf("xsk: xdp-features of %s: %w", ifname, err)
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return false, false, fmt.Errorf("xsk: xdp-features of %s: %w", ifname, err)
		}
		for _, a := range attrs {
			if a.Attr.Type == attrXDPFeatures && len(a.Value) == 8 {
				return binary.NativeEndian.Uint64(a.Value)&xdpActNDOXmit != 0, true, nil
			}
		}
	}
	return false, false, nil
}

// genlHeader is a generic netlink message header (struct genlmsghdr), its
// reserved bytes zero: netlink's own nl.Genlmsg serialises 4 bytes of a
// 2-byte struct, and the kernel refuses a request whose reserved bytes are
// not zero (EINVAL).
type genlHeader struct{ cmd, version uint8 }

func (g genlHeader) Len() int          { return nl.SizeofGenlmsg }
func (g genlHeader) Serialize() []byte { return []byte{g.cmd, g.version, 0, 0} }
