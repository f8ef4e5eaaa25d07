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
// (RFC 1624 eqn. 3, adjustment precomputed in the plan). The result is the
// same bytes the patch would give (TestReplicateMatchesPatch).
func (p *Plan) Replicate(inner []byte, ep *wire.EncapParams, a Allocator) (n int, err error) {
	if err := checkInner(inner); err != nil {
		return 0, err
	}
	var ref4, ref6 []byte // the first finished copy of each family
	for i := range p.copies {
		c := &p.copies[i]
		t := c.Template
		buf, ok := a.Alloc(len(t) + len(inner))
		if !ok {
			return i, ErrNoBuffer
		}
		switch {
		case c.mode == modeDerive4 && ref4 != nil:
			copy(buf, ref4)
			copy(buf[16:20], t[16:20])
			s := uint32(^binary.BigEndian.Uint16(ref4[10:])) + c.delta
			s = s&0xffff + s>>16
			s = s&0xffff + s>>16
			binary.BigEndian.PutUint16(buf[10:], ^uint16(s))
		case c.mode == modeDerive6 && ref6 != nil:
			copy(buf, ref6)
			copy(buf[24:40], t[24:40])
		default:
			copy(buf, t)
			copy(buf[len(t):], inner)
			if len(t) == wire.OuterIPv4Len {
				err = wire.PatchOuterIPv4(buf, ep)
				if ref4 == nil {
					ref4 = buf
				}
			} else {
				err = wire.PatchOuterIPv6(buf, ep)
				if ref6 == nil {
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
	return len(p.copies), nil
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
