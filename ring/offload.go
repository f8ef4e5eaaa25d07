package ring

import "net/netip"

// OffloadFront is the length of the front an offloaded flow's packets get
// through an IPv4 RLOC: Ethernet (14), outer IPv4 (20), UDP (8) and LISP
// (8) headers; OffloadFront6 through an IPv6 RLOC, with an outer IPv6
// header (40).
const (
	OffloadFront  = 50
	OffloadFront6 = 70
)

// OffloadEntry is one flow a fast path hands to the kernel: the site
// interface's XDP program (ring/xsk) encapsulates the flow's next packets
// itself, as the fast path's flow memo would, and redirects them to the
// egress interface, so they never reach the worker. A flow is its
// destination (IPv4, or IPv6 with InnerV6; the interface's instance-ID
// implied) and its RLOC selection
// bucket (cache.SelectBucket of its flow hash); an entry is used only while
// the table's epoch equals Epoch.
type OffloadEntry struct {
	Dst     [4]byte
	InnerV6 bool     // the flow's destination is an IPv6 EID: Dst6, not Dst
	Dst6    [16]byte // with InnerV6
	Bucket  uint8
	Epoch   uint32
	// Ifindex is the egress interface.
	Ifindex int
	// Front is the Ethernet, outer IPv4, UDP and LISP headers as the fast
	// path's next-hop memo holds them (its first OffloadFront bytes), or
	// with V6 the Ethernet, outer IPv6 (its UDP checksum zero), UDP and
	// LISP headers (OffloadFront6 bytes); CsBase is the outer IPv4
	// checksum's template part (RFC 1624 eqn. 3), MaxInner the longest
	// inner packet (the path MTU less the outer headers), Nonce whether to
	// draw a 24-bit nonce into the LISP header.
	Front    [OffloadFront6]byte
	V6       bool
	CsBase   uint32
	MaxInner uint16
	Nonce    bool
}

// OuterDst is the outer destination (the RLOC) in e's Front.
func (e *OffloadEntry) OuterDst() netip.Addr {
	const eth = 14
	if e.V6 {
		return netip.AddrFrom16([16]byte(e.Front[eth+24 : eth+40]))
	}
	return netip.AddrFrom4([4]byte(e.Front[eth+16 : eth+20]))
}

// OffloadTable is a site interface's table of offloaded flows (ring/xsk:
// Program). Its methods make system calls: the slow path's, or the
// worker's once per step at most.
type OffloadTable interface {
	// PutOffload adds or replaces the entry of e's flow.
	PutOffload(e *OffloadEntry) error
	// DeleteOffload deletes the entry of e's flow (its destination and
	// bucket), if there is one.
	DeleteOffload(e *OffloadEntry) error
	// SetOffload sets the table's epoch (0 turns the offload off) and the
	// flow hash seed its flows were hashed with.
	SetOffload(epoch, seed uint32) error
	// SweepOffload visits every entry, with the packets it sent since it
	// was put, and deletes those keep rejects; it returns how many it
	// deleted.
	SweepOffload(keep func(e *OffloadEntry, hits uint64) bool) (int, error)
	// ListOffload calls f with every entry (e is reused between calls) and
	// the packets it sent since it was put, until f returns false.
	ListOffload(f func(e *OffloadEntry, hits uint64) bool) error
}

// RxPender is implemented by ports that tell, without a system call,
// whether received frames wait on their ring (ring/xsk, ring/mem). A
// worker offers a flow to the kernel when its port's ring is empty, so
// that no packet of the flow still waits there when the kernel starts to
// send the flow's next ones.
type RxPender interface {
	RxPending() bool
}

// DecapEntry is one flow a fast path hands to the kernel for delivery: the
// core interface's XDP program (ring/xsk) decapsulates the LISP packets to
// RLOC (with V6: to RLOC6, over IPv6) that carry instance-ID IID and inner
// IPv4 destination Dst (with InnerV6: IPv6 destination Dst6), as the fast
// path's ETR would, puts Eth in front of
// the inner packet and redirects it to the site interface Ifindex. An entry is used only while
// the table's epoch equals Epoch; NonceOK says whether a packet whose LISP
// header has the N flag may be taken (the fast path reports nonces to its
// slow path only while it waits for an echo). A flow's entries are one
// per outer IP version (V6): a flow that comes over both has two.
type DecapEntry struct {
	IID     uint32
	Dst     [4]byte
	InnerV6 bool     // the flow's destination is an IPv6 EID: Dst6, not Dst
	Dst6    [16]byte // with InnerV6
	RLOC    [4]byte
	V6      bool
	RLOC6   [16]byte
	Epoch   uint32
	Ifindex int
	Eth     [14]byte
	NonceOK bool
}

// InnerDst is the flow's (inner) destination.
func (e *DecapEntry) InnerDst() netip.Addr {
	if e.InnerV6 {
		return netip.AddrFrom16(e.Dst6)
	}
	return netip.AddrFrom4(e.Dst)
}

// DecapTable is a core interface's table of decapsulated flows (ring/xsk:
// Program), with the epoch and seed of OffloadTable.SetOffload.
type DecapTable interface {
	// PutDecap adds or replaces the entry of e's flow and outer version.
	PutDecap(e *DecapEntry) error
	// SetOffload sets the table's epoch (0 turns it off); the seed is
	// unused.
	SetOffload(epoch, seed uint32) error
	// SweepDecap visits every entry, with the packets it sent since it was
	// put, and deletes those keep rejects; it returns how many it deleted.
	SweepDecap(keep func(e *DecapEntry, hits uint64) bool) (int, error)
	// ListDecap calls f with every entry (e is reused between calls) and
	// the packets it sent since it was put, until f returns false.
	ListDecap(f func(e *DecapEntry, hits uint64) bool) error
}

// ReencapEntry is one flow an RTR's fast path hands to the kernel: the core
// interface's XDP program (ring/xsk) re-encapsulates the LISP packets to
// RLOC (with Over6: to RLOC6, over IPv6) that carry instance-ID IID and
// inner IPv4 destination Dst in RLOC selection bucket Bucket, as the fast
// path's flow memo would: their outer headers go and the entry's front
// (OffloadEntry's fields, its InnerV6 unused) comes in their place, and the
// packet leaves through Ifindex. NonceOK is DecapEntry's. A flow's entries
// are one per outer IP version (Over6), as DecapEntry's.
type ReencapEntry struct {
	OffloadEntry
	IID     uint32
	RLOC    [4]byte
	Over6   bool
	RLOC6   [16]byte
	NonceOK bool
}

// ReencapTable is a core interface's table of flows an RTR re-encapsulates
// (ring/xsk: Program). Its epoch is separate from the DecapTable's of the
// same interface: its entries follow the map-cache and leave through core
// interfaces, as OffloadTable's do.
type ReencapTable interface {
	// PutReencap adds or replaces the entry of e's flow and outer version.
	PutReencap(e *ReencapEntry) error
	// DeleteReencap deletes the entry of e's flow and outer version (its
	// destination, bucket, instance-ID and Over6), if there is one.
	DeleteReencap(e *ReencapEntry) error
	// SetReencap sets the table's epoch (0 turns it off) and the flow hash
	// seed its flows were hashed with.
	SetReencap(epoch, seed uint32) error
	// SweepReencap visits every entry, with the packets it sent since it
	// was put, and deletes those keep rejects; it returns how many it
	// deleted.
	SweepReencap(keep func(e *ReencapEntry, hits uint64) bool) (int, error)
	// ListReencap calls f with every entry (e is reused between calls) and
	// the packets it sent since it was put, until f returns false.
	ListReencap(f func(e *ReencapEntry, hits uint64) bool) error
}
