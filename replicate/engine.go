package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rloc-router/rloc/wire"
)

// Allocator hands out the buffers Plan.Replicate writes copies into. The
// fast path implements it over its frame pool (each buffer is the IP part of
// a frame, after room for the Ethernet header); tests over plain slices.
type Allocator interface {
	// Alloc returns a buffer of exactly n bytes for the next copy, or ok
	// false when none is left. Replicate writes the whole buffer.
	Alloc(n int) (buf []byte, ok bool)
}

// Errors of Plan.Replicate.
var (
	// ErrNoBuffer: the Allocator ran out; the copies made so far are valid.
	ErrNoBuffer = errors.New("replicate: no buffer for a copy")
	// ErrInner: the inner packet cannot be encapsulated (not IPv4/IPv6, a
	// truncated header, or too long for an outer header); no buffer was
	// taken.
	ErrInner = errors.New("replicate: inner packet cannot be encapsulated")
)

// maxInner is the longest inner packet every template family can carry:
// IPv4 total length 65535 minus the 36-byte outer header (IPv6 allows
// more, but one bound keeps the check out of the loop).
const maxInner = 0xffff - wire.OuterIPv4Len

// Replicate writes one encapsulated copy of the inner IP packet per Copy of
// the plan, in order, into buffers from a: the copy's template, then the
// inner packet, with the outer header completed by wire.PatchOuterIPv4 or
// wire.PatchOuterIPv6 using ep (flow hash, nonce, LSBs, IPv4 ID: the same
// for every copy, which is allowed since every copy has its own outer
// destination, RFC 6864 §4). Buffer i holds the copy to Copies()[i].Dst.
//
// It returns how many buffers it took from a. With a nil error they are
// all valid copies; with ErrNoBuffer the n copies made are valid and the
// rest were not made; with ErrInner n is 0. It does not allocate. The
// buffers must not overlap.
//
// The first copy of each outer family is made by copying its template and
// the inner packet and patching; a later copy whose template differs from
// that first one only in the destination (the usual case: one router, one
// source RLOC, one LISP header) is made by copying the first finished copy
// whole and rewriting the destination and, for IPv4, the header checksum
// (the patch's own RFC 1624 eqn. 3 update of that template's checksum, its
// packet-dependent terms computed once). The result is the
// same bytes the patch would give (TestReplicateMatchesPatch).
func (p *Plan) Replicate(inner []byte, ep *wire.EncapParams, a Allocator) (n int, err error) {
	return p.ReplicateRange(inner, ep, a, 0, len(p.copies))
}

// ReplicateRange is Replicate for the copies Copies()[from:to] only, so a
// caller with a bounded number of buffers can make the copies of a large
// plan in rounds (sending each round before the next); buffer i then holds
// the copy to Copies()[from+i].Dst. Bounds outside the plan are clamped.
func (p *Plan) ReplicateRange(inner []byte, ep *wire.EncapParams, a Allocator, from, to int) (n int, err error) {
	if err := checkInner(inner); err != nil {
		return 0, err
	}
	to = min(to, len(p.copies))
	from = max(from, 0)
	if from >= to {
		return 0, nil
	}
	copies := p.copies[from:to]
	// ref4 and ref6 are the first finished copy of each family whose
	// template later copies can be derived from; sum4 is the part of the
	// IPv4 header checksum update that is the same for every such copy.
	var ref4, ref6 []byte
	var sum4 uint32
	for i := range copies {
		c := &copies[i]
		t := c.Template
		buf, ok := a.Alloc(len(t) + len(inner))
		if !ok {
			return i, ErrNoBuffer
		}
		switch {
		case c.mode == modeDerive4 && ref4 != nil:
			copy(buf, ref4)
			copy(buf[16:20], t[16:20])
			// PatchOuterIPv4's update (RFC 1624 eqn. 3) of this template's
			// checksum, with the terms shared by all copies precomputed.
			s := uint32(^binary.BigEndian.Uint16(t[10:])) + sum4
			s = s&0xffff + s>>16
			s = s&0xffff + s>>16
			binary.BigEndian.PutUint16(buf[10:], ^uint16(s))
			continue
		case c.mode == modeDerive6 && ref6 != nil:
			copy(buf, ref6)
			copy(buf[24:40], t[24:40])
			continue
		default:
			copy(buf, t)
			copy(buf[len(t):], inner)
			if len(t) == wire.OuterIPv4Len {
				err = wire.PatchOuterIPv4(buf, ep)
				if ref4 == nil && err == nil && (c.mode == modeDerive4 || from+i == p.ref4) {
					ref4 = buf
					for _, o := range [...]int{0, 2, 4, 8} {
						sum4 += uint32(^binary.BigEndian.Uint16(t[o:])) + uint32(binary.BigEndian.Uint16(buf[o:]))
					}
				}
			} else {
				err = wire.PatchOuterIPv6(buf, ep)
				if ref6 == nil && (c.mode == modeDerive6 || from+i == p.ref6) {
					ref6 = buf
				}
			}
			if err != nil {
				// checkInner makes this unreachable; the buffer holds no
				// valid copy.
				return i + 1, fmt.Errorf("%w: %w", ErrInner, err)
			}
		}
	}
	return len(copies), nil
}

var (
	errInnerVersion = fmt.Errorf("%w: not IPv4 or IPv6", ErrInner)
	errInnerShort   = fmt.Errorf("%w: truncated IP header", ErrInner)
	errInnerLong    = fmt.Errorf("%w: longer than %d bytes", ErrInner, maxInner)
)

// checkInner makes sure every patch of inner succeeds.
func checkInner(inner []byte) error {
	if len(inner) == 0 {
		return errInnerShort
	}
	switch inner[0] >> 4 {
	case 4:
		if len(inner) < wire.IPv4MinLen {
			return errInnerShort
		}
	case 6:
		if len(inner) < wire.IPv6Len {
			return errInnerShort
		}
	default:
		return errInnerVersion
	}
	if len(inner) > maxInner {
		return errInnerLong
	}
	return nil
}
