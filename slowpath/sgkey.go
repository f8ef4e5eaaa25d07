package slowpath

import (
	"cmp"
	"fmt"
	"net/netip"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// SGKey identifies an (S,G) or (*,G) in an instance: Src has mask length 0
// for (*,G) (the unspecified address of the group's family). Build it with
// NewSGKey so that it is canonical.
type SGKey struct {
	// IID is the instance-ID.
	IID uint32
	// Src is the S-EID prefix, mask length 0 for (*,G).
	Src netip.Prefix
	// Group is the G-EID prefix.
	Group netip.Prefix
}

// sgKey and newSGKey are the configuration's names for SGKey and NewSGKey.
type sgKey = SGKey

func newSGKey(iid uint32, src, group netip.Prefix) SGKey { return NewSGKey(iid, src, group) }

// NewSGKey returns the canonical key of (src, group) in iid: both prefixes
// masked, an invalid or zero-length src meaning (*,G).
func NewSGKey(iid uint32, src, group netip.Prefix) SGKey {
	g := group.Masked()
	if !src.IsValid() || src.Bits() == 0 {
		return SGKey{IID: iid, Src: netip.PrefixFrom(unspecifiedOf(g.Addr()), 0), Group: g}
	}
	return SGKey{IID: iid, Src: src.Masked(), Group: g}
}

func unspecifiedOf(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// SGKeyOf reads the (S,G) of a multicast-info LCAF (RFC 8060 §4.5).
func SGKeyOf(a *wire.Address) (SGKey, bool) {
	iid, s, g, ok := a.SG()
	if !ok || !g.Addr().IsMulticast() {
		return SGKey{}, false
	}
	return NewSGKey(iid, s, g), true
}

// Star reports whether k is a (*,G).
func (k SGKey) Star() bool { return k.Src.Bits() == 0 }

// Address is k as a multicast-info LCAF (RFC 8060 §4.5).
func (k SGKey) Address() wire.Address { return wire.SGAddress(k.IID, k.Src, k.Group) }

// SrcAddr is the source address, invalid for (*,G).
func (k SGKey) SrcAddr() netip.Addr {
	if k.Star() {
		return netip.Addr{}
	}
	return k.Src.Addr()
}

// Compare orders keys by instance-ID, group, then source (for listings).
func (k SGKey) Compare(o SGKey) int {
	if k.IID != o.IID {
		return cmp.Compare(k.IID, o.IID)
	}
	if c := k.Group.Addr().Compare(o.Group.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Group.Bits(), o.Group.Bits()); c != 0 {
		return c
	}
	if c := k.Src.Addr().Compare(o.Src.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(k.Src.Bits(), o.Src.Bits())
}

// String formats the key as "[iid] (S, G)".
func (k SGKey) String() string {
	s := "*"
	if !k.Star() {
		s = k.Src.String()
	}
	return fmt.Sprintf("[%d] (%s, %s)", k.IID, s, k.Group)
}

// SGRecord returns the mapping record of an (S,G) with one RLE locator
// (RFC 8378 §4: the RLE carries the ETRs' and RTRs' RLOCs), or with no
// locator and the drop action when nodes is empty.
func SGRecord(k SGKey, ttl uint32, nodes []wire.RLENode) wire.Record {
	r := wire.Record{TTL: ttl, MaskLen: uint8(k.Group.Bits()), EID: k.Address(), Authoritative: true}
	if len(nodes) > 0 {
		r.Locators = []wire.Locator{{Priority: 255, MPriority: 1, MWeight: 100, Reachable: true, Address: wire.RLEAddress(nodes...)}}
	} else {
		r.Action = wire.ActionDrop
	}
	return r
}

// RecordRLE collects the RLE entries of a record: every RLE locator's
// entries, and plain IP locators usable for multicast at level 128.
func RecordRLE(r *wire.Record) ([]wire.RLENode, error) {
	var nodes []wire.RLENode
	for i := range r.Locators {
		l := &r.Locators[i]
		if ns, ok := l.Address.RLENodes(); ok {
			nodes = append(nodes, ns...)
			continue
		}
		if l.MPriority == 255 {
			continue
		}
		if l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6 {
			nodes = append(nodes, wire.RLENode{Level: replicate.ETRLevel, Address: l.Address})
			continue
		}
		return nil, fmt.Errorf("locator %d is %s, neither an RLE nor an RLOC", i, l.Address)
	}
	return nodes, nil
}
