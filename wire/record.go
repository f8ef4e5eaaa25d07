package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Locator is one RLOC of a mapping record (RFC 9301 §5.4).
type Locator struct {
	// Priority is the unicast priority; lower is preferred, 255 means do not
	// use for unicast (RFC 9301 §5.4).
	Priority uint8
	// Weight shares traffic among locators of equal priority (RFC 9301 §5.4).
	Weight uint8
	// MPriority and MWeight are the multicast priority and weight (RFC 9301 §5.4).
	MPriority, MWeight uint8
	// Local is the L bit: the locator is one of the sender's own (RFC 9301 §5.4).
	Local bool
	// Probed is the p bit: the reply answers an RLOC-probe sent to this
	// locator (RFC 9301 §5.4).
	Probed bool
	// Reachable is the R bit: the locator is reachable from the sender's point
	// of view (RFC 9301 §5.4).
	Reachable bool
	// Unused holds the 13 unused flag bits, kept for re-emission (RFC 9301 §5.4).
	Unused uint16
	// Address is the RLOC; it may be an LCAF such as an RLE or ELP (RFC 8060).
	Address Address
}

const (
	locFlagR = 1 << 0 // RFC 9301 §5.4 R bit
	locFlagP = 1 << 1 // RFC 9301 §5.4 p bit
	locFlagL = 1 << 2 // RFC 9301 §5.4 L bit
)

// locatorFixedLen is the part of a locator before its address.
const locatorFixedLen = 6

// Len returns the encoded length of the locator.
func (l *Locator) Len() int { return locatorFixedLen + l.Address.Len() }

// Append appends the locator to b.
func (l *Locator) Append(b []byte) ([]byte, error) {
	b = append(b, l.Priority, l.Weight, l.MPriority, l.MWeight)
	f := (l.Unused & 0x1fff) << 3
	if l.Local {
		f |= locFlagL
	}
	if l.Probed {
		f |= locFlagP
	}
	if l.Reachable {
		f |= locFlagR
	}
	b = binary.BigEndian.AppendUint16(b, f)
	return l.Address.Append(b)
}

// Parse reads one locator from the start of b and returns the bytes used.
func (l *Locator) Parse(b []byte) (int, error) {
	if len(b) < locatorFixedLen {
		return 0, fmt.Errorf("%w: locator", ErrTruncated)
	}
	l.Priority, l.Weight, l.MPriority, l.MWeight = b[0], b[1], b[2], b[3]
	f := binary.BigEndian.Uint16(b[4:])
	l.Local, l.Probed, l.Reachable = f&locFlagL != 0, f&locFlagP != 0, f&locFlagR != 0
	l.Unused = f >> 3
	n, err := l.Address.Parse(b[locatorFixedLen:])
	if err != nil {
		return 0, fmt.Errorf("locator address: %w", err)
	}
	return locatorFixedLen + n, nil
}

// Record is a mapping record as carried by Map-Reply, Map-Register,
// Map-Notify (RFC 9301 §5.4, §5.6, §5.7) and, with the referral fields, by
// Map-Referral (RFC 8111 §6.4).
type Record struct {
	// TTL is the record TTL in minutes; 0 means remove now, 0xFFFFFFFF means
	// the receiver decides (RFC 9301 §5.4).
	TTL uint32
	// MaskLen is the EID mask length (RFC 9301 §5.4).
	MaskLen uint8
	// Action is the ACT field; for Map-Referral it holds the referral type
	// (RFC 9301 §5.4, RFC 8111 §6.4.1).
	Action Action
	// Authoritative is the A bit (RFC 9301 §5.4).
	Authoritative bool
	// Incomplete is the I bit of Map-Referral records (RFC 8111 §6.4); it
	// is zero in other messages.
	Incomplete bool
	// SigCount is the 4-bit SigCnt of Map-Referral records (RFC 8111 §6.4);
	// the Rsvd field elsewhere.
	SigCount uint8
	// MapVersion is the 12-bit map-version number (RFC 9301 §5.4).
	MapVersion uint16
	// EID is the EID prefix address; with MaskLen it forms the prefix.
	EID Address
	// Locators are the record's RLOCs (referral targets in Map-Referral).
	Locators []Locator
}

// recordFixedLen is the part of a record before the EID-Prefix-AFI.
const recordFixedLen = 10

// TTLReceiverDecides is the record TTL meaning "the receiver decides how
// long to keep the mapping" (RFC 9301 §5.4).
const TTLReceiverDecides = 0xffffffff

// Len returns the encoded length of the record.
func (r *Record) Len() int {
	n := recordFixedLen + r.EID.Len()
	for i := range r.Locators {
		n += r.Locators[i].Len()
	}
	return n
}

// Append appends the record to b.
func (r *Record) Append(b []byte) ([]byte, error) {
	if len(r.Locators) > 255 {
		return b, fmt.Errorf("%w: %d locators in one record", ErrTooLarge, len(r.Locators))
	}
	if r.Action > 7 || r.MapVersion > 0xfff || r.SigCount > 15 {
		return b, fmt.Errorf("%w: record action %d / map-version %d / sigcnt %d", ErrBadValue, r.Action, r.MapVersion, r.SigCount)
	}
	b = binary.BigEndian.AppendUint32(b, r.TTL)
	b = append(b, byte(len(r.Locators)), r.MaskLen)
	f := uint16(r.Action) << 13
	if r.Authoritative {
		f |= 1 << 12
	}
	if r.Incomplete {
		f |= 1 << 11
	}
	b = binary.BigEndian.AppendUint16(b, f)
	b = binary.BigEndian.AppendUint16(b, uint16(r.SigCount)<<12|r.MapVersion)
	var err error
	if b, err = r.EID.Append(b); err != nil {
		return b, fmt.Errorf("record EID: %w", err)
	}
	for i := range r.Locators {
		if b, err = r.Locators[i].Append(b); err != nil {
			return b, err
		}
	}
	return b, nil
}

// Parse reads one record from the start of b and returns the bytes used.
func (r *Record) Parse(b []byte) (int, error) {
	if len(b) < recordFixedLen {
		return 0, fmt.Errorf("%w: record", ErrTruncated)
	}
	r.TTL = binary.BigEndian.Uint32(b)
	count := int(b[4])
	r.MaskLen = b[5]
	f := binary.BigEndian.Uint16(b[6:])
	r.Action = Action(f >> 13)
	r.Authoritative = f&(1<<12) != 0
	r.Incomplete = f&(1<<11) != 0
	v := binary.BigEndian.Uint16(b[8:])
	r.SigCount, r.MapVersion = uint8(v>>12), v&0xfff
	off := recordFixedLen
	n, err := r.EID.Parse(b[off:])
	if err != nil {
		return 0, fmt.Errorf("record EID: %w", err)
	}
	off += n
	if err := checkMaskLen(&r.EID, r.MaskLen); err != nil {
		return 0, err
	}
	// Each locator takes at least 8 bytes: refuse counts the buffer cannot hold
	// before growing the slice.
	if count*(locatorFixedLen+2) > len(b)-off {
		return 0, fmt.Errorf("%w: %d locators announced, %d bytes left", ErrTruncated, count, len(b)-off)
	}
	r.Locators = growTo(r.Locators, count)
	for i := range r.Locators {
		n, err := r.Locators[i].Parse(b[off:])
		if err != nil {
			return 0, fmt.Errorf("locator %d: %w", i, err)
		}
		off += n
	}
	return off, nil
}

// Prefix is a shorthand for r.EID.Prefix(r.MaskLen).
func (r *Record) Prefix() (iid uint32, p netip.Prefix, ok bool) { return r.EID.Prefix(r.MaskLen) }

// EIDRecord is the EID record of a Map-Request and of an Info-Request
// (RFC 9301 §5.2): a reserved byte, the mask length and the EID prefix.
// RFC 9437 §4 takes the top bit of the reserved byte as the N bit.
type EIDRecord struct {
	// Notify is the N bit: the requester subscribes to the EID prefix and
	// wants a Map-Notify whenever its mapping changes (RFC 9437 §4). The
	// other bits of the reserved byte are sent as zero and ignored.
	Notify bool
	// MaskLen is the EID mask length (RFC 9301 §5.2).
	MaskLen uint8
	// EID is the EID prefix (RFC 9301 §5.2).
	EID Address
}

// eidRecN is the N bit in the reserved byte of an EID record (RFC 9437 §4).
const eidRecN = 0x80

// Len returns the encoded length of the EID record.
func (r *EIDRecord) Len() int { return 2 + r.EID.Len() }

// Append appends the EID record to b.
func (r *EIDRecord) Append(b []byte) ([]byte, error) {
	var rsvd byte
	if r.Notify {
		rsvd = eidRecN
	}
	b = append(b, rsvd, r.MaskLen)
	return r.EID.Append(b)
}

// Parse reads an EID record from the start of b and returns the bytes used.
func (r *EIDRecord) Parse(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("%w: EID record", ErrTruncated)
	}
	r.Notify = b[0]&eidRecN != 0
	r.MaskLen = b[1]
	n, err := r.EID.Parse(b[2:])
	if err != nil {
		return 0, fmt.Errorf("EID record: %w", err)
	}
	if err := checkMaskLen(&r.EID, r.MaskLen); err != nil {
		return 0, err
	}
	return 2 + n, nil
}

// Prefix is a shorthand for r.EID.Prefix(r.MaskLen).
func (r *EIDRecord) Prefix() (iid uint32, p netip.Prefix, ok bool) { return r.EID.Prefix(r.MaskLen) }

// checkMaskLen refuses a mask length longer than the (innermost) address it
// applies to, for IP and MAC EIDs; other address kinds carry their own masks.
func checkMaskLen(a *Address, ml uint8) error {
	_, in, ok := a.Unwrap()
	if !ok {
		return nil
	}
	max := -1
	switch in.AFI {
	case AFIIPv4:
		max = 32
	case AFIIPv6:
		max = 128
	case AFIMAC, AFIMAC48:
		max = 48
	}
	if max >= 0 && int(ml) > max {
		return fmt.Errorf("%w: mask length %d for AFI %d", ErrBadValue, ml, in.AFI)
	}
	return nil
}
