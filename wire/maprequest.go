package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Bits of the first 32-bit word of a Map-Request (RFC 9301 §5.2):
//
//	|Type=1 |A|M|P|S|p|s|R|I|  Rsvd   |L|D|   IRC   | Record Count  |
//
// RFC 9301 leaves bit 11 reserved; RFC 9437 §4 assigns it as the I bit
// (xTR-ID and site-ID appended). Reserved bits are sent as zero and ignored.
const (
	mreqA = 1 << 27 // RFC 9301 §5.2 A: authoritative
	mreqM = 1 << 26 // RFC 9301 §5.2 M: map-data present
	mreqP = 1 << 25 // RFC 9301 §5.2 P: RLOC-probe
	mreqS = 1 << 24 // RFC 9301 §5.2 S: solicit-Map-Request (SMR)
	mreqp = 1 << 23 // RFC 9301 §5.2 p: sent by a PITR
	mreqs = 1 << 22 // RFC 9301 §5.2 s: SMR-invoked
	mreqI = 1 << 20 // RFC 9437 §4 I: xTR-ID and site-ID present
	mreqL = 1 << 14 // RFC 9301 §5.2 L: local xTR
	mreqD = 1 << 13 // RFC 9301 §5.2 D: don't map-reply
)

const (
	// xtrIDLen is the length of an xTR-ID (RFC 9437 §4).
	xtrIDLen = 16
	// ctrlHeaderLen is the first word plus the nonce, common to types 1-5.
	ctrlHeaderLen = 4 + 8
	// maxITRRLOCs is the most ITR-RLOCs the 5-bit IRC can announce (RFC 9301 §5.2).
	maxITRRLOCs = 32
	// minAddressLen is the shortest encoded address (an AFI alone).
	minAddressLen = 2
	// minEIDRecordLen is the shortest Map-Request EID record.
	minEIDRecordLen = 2 + minAddressLen
)

// MapRequest is a Map-Request (type 1, RFC 9301 §5.2). Parse reuses the
// slices held by the struct, so a MapRequest kept by the caller parses
// message after message without allocating.
type MapRequest struct {
	// Authoritative is the A bit: the ITR wants the destination site, not the
	// mapping system, to answer (RFC 9301 §5.2).
	Authoritative bool
	// MapDataPresent is the M bit: a Map-Reply record (MapReply) follows the
	// EID records (RFC 9301 §5.2). Not to be confused with the M bit of
	// Map-Register, which asks for a Map-Notify.
	MapDataPresent bool
	// Probe is the P bit: the request is an RLOC-probe (RFC 9301 §5.2).
	Probe bool
	// SMR is the S bit: solicit-Map-Request (RFC 9301 §5.2).
	SMR bool
	// PITR is the p bit: the request is sent by a PITR (RFC 9301 §5.2).
	PITR bool
	// SMRInvoked is the s bit: the request is sent in answer to an SMR
	// (RFC 9301 §5.2).
	SMRInvoked bool
	// XTRIDPresent is the I bit: XTRID and SiteID follow the message
	// (RFC 9437 §4).
	XTRIDPresent bool
	// LocalXTR is the L bit: the sender is an xTR of the site it asks
	// (RFC 9301 §5.2).
	LocalXTR bool
	// DontMapReply is the D bit: the receiver must not send a Map-Reply
	// (RFC 9301 §5.2).
	DontMapReply bool
	// Nonce is echoed in the Map-Reply (RFC 9301 §5.2).
	Nonce Nonce
	// SourceEID is the Source EID; AFI 0 when there is none (RFC 9301 §5.2).
	SourceEID Address
	// ITRRLOCs are the ITR-RLOCs, 1 to 32; the IRC field on the wire is their
	// count minus one (RFC 9301 §5.2).
	ITRRLOCs []Address
	// Records are the requested EID prefixes, 1 to 255 (RFC 9301 §5.2).
	Records []EIDRecord
	// MapReply is the Map-Reply record, used when MapDataPresent is set
	// (RFC 9301 §5.2).
	MapReply Record
	// XTRID and SiteID are the trailer present when XTRIDPresent is set
	// (RFC 9437 §4).
	XTRID XTRID
	// SiteID identifies the sender's site (RFC 9437 §4).
	SiteID uint64
	// NoSiteID marks a trailer of the xTR-ID alone, 16 bytes without the
	// site-ID, as lispers.net sends it; Parse tells the two forms apart by
	// the bytes left after the records (24 or 16), Append writes the short
	// form when it is set. SiteID is then 0.
	NoSiteID bool
}

// Len returns the encoded length of the message.
func (m *MapRequest) Len() int {
	n := ctrlHeaderLen + m.SourceEID.Len()
	for i := range m.ITRRLOCs {
		n += m.ITRRLOCs[i].Len()
	}
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	if m.MapDataPresent {
		n += m.MapReply.Len()
	}
	if m.XTRIDPresent {
		n += xtrTrailerLen
		if m.NoSiteID {
			n -= 8
		}
	}
	return n
}

// Append appends the encoded message to b. On error it returns b unchanged.
func (m *MapRequest) Append(b []byte) ([]byte, error) {
	if len(m.ITRRLOCs) < 1 || len(m.ITRRLOCs) > maxITRRLOCs {
		return b, fmt.Errorf("%w: Map-Request with %d ITR-RLOCs (1..%d)", ErrBadValue, len(m.ITRRLOCs), maxITRRLOCs)
	}
	if len(m.Records) < 1 || len(m.Records) > 255 {
		return b, fmt.Errorf("%w: Map-Request with %d records (1..255)", ErrBadValue, len(m.Records))
	}
	w := uint32(TypeMapRequest)<<28 | uint32(len(m.ITRRLOCs)-1)<<8 | uint32(len(m.Records))
	w |= flag(m.Authoritative, mreqA) | flag(m.MapDataPresent, mreqM) | flag(m.Probe, mreqP) |
		flag(m.SMR, mreqS) | flag(m.PITR, mreqp) | flag(m.SMRInvoked, mreqs) |
		flag(m.XTRIDPresent, mreqI) | flag(m.LocalXTR, mreqL) | flag(m.DontMapReply, mreqD)
	start := len(b)
	b = slices.Grow(b, m.Len())
	b = binary.BigEndian.AppendUint32(b, w)
	b = append(b, m.Nonce[:]...)
	var err error
	if b, err = m.SourceEID.Append(b); err != nil {
		return b[:start], fmt.Errorf("Map-Request source EID: %w", err)
	}
	for i := range m.ITRRLOCs {
		if b, err = m.ITRRLOCs[i].Append(b); err != nil {
			return b[:start], fmt.Errorf("Map-Request ITR-RLOC %d: %w", i, err)
		}
	}
	for i := range m.Records {
		if b, err = m.Records[i].Append(b); err != nil {
			return b[:start], fmt.Errorf("Map-Request record %d: %w", i, err)
		}
	}
	if m.MapDataPresent {
		if b, err = m.MapReply.Append(b); err != nil {
			return b[:start], fmt.Errorf("Map-Request map-reply record: %w", err)
		}
	}
	if m.XTRIDPresent {
		if m.NoSiteID {
			b = append(b, m.XTRID[:]...)
		} else {
			b = appendXTRTrailer(b, &m.XTRID, m.SiteID)
		}
	}
	return b, nil
}

// Parse reads a whole Map-Request from b into m, reusing m's slices. Bytes
// after the message are an error.
func (m *MapRequest) Parse(b []byte) error {
	if len(b) < ctrlHeaderLen {
		return fmt.Errorf("%w: Map-Request header", ErrTruncated)
	}
	w := binary.BigEndian.Uint32(b)
	if t := MessageType(w >> 28); t != TypeMapRequest {
		return fmt.Errorf("%w: %v, want Map-Request", ErrBadType, t)
	}
	m.Authoritative = w&mreqA != 0
	m.MapDataPresent = w&mreqM != 0
	m.Probe = w&mreqP != 0
	m.SMR = w&mreqS != 0
	m.PITR = w&mreqp != 0
	m.SMRInvoked = w&mreqs != 0
	m.XTRIDPresent = w&mreqI != 0
	m.LocalXTR = w&mreqL != 0
	m.DontMapReply = w&mreqD != 0
	nrloc := int(w>>8&0x1f) + 1
	nrec := int(w & 0xff)
	if nrec == 0 {
		return fmt.Errorf("%w: Map-Request without records", ErrBadValue)
	}
	copy(m.Nonce[:], b[4:ctrlHeaderLen])
	off := ctrlHeaderLen
	n, err := m.SourceEID.Parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Request source EID: %w", err)
	}
	off += n
	// Refuse counts the remaining bytes cannot hold before growing slices.
	if nrloc*minAddressLen > len(b)-off {
		return fmt.Errorf("%w: %d ITR-RLOCs announced, %d bytes left", ErrTruncated, nrloc, len(b)-off)
	}
	m.ITRRLOCs = growTo(m.ITRRLOCs, nrloc)
	for i := range m.ITRRLOCs {
		n, err := m.ITRRLOCs[i].Parse(b[off:])
		if err != nil {
			return fmt.Errorf("Map-Request ITR-RLOC %d: %w", i, err)
		}
		off += n
	}
	if nrec*minEIDRecordLen > len(b)-off {
		return fmt.Errorf("%w: %d records announced, %d bytes left", ErrTruncated, nrec, len(b)-off)
	}
	m.Records = growTo(m.Records, nrec)
	for i := range m.Records {
		n, err := m.Records[i].Parse(b[off:])
		if err != nil {
			return fmt.Errorf("Map-Request record %d: %w", i, err)
		}
		off += n
	}
	if m.MapDataPresent {
		n, err := m.MapReply.Parse(b[off:])
		if err != nil {
			return fmt.Errorf("Map-Request map-reply record: %w", err)
		}
		off += n
	} else {
		resetRecord(&m.MapReply)
	}
	m.NoSiteID = false
	if m.XTRIDPresent && len(b)-off == xtrIDLen {
		// lispers.net's trailer: the xTR-ID without the site-ID.
		copy(m.XTRID[:], b[off:])
		m.SiteID, m.NoSiteID = 0, true
		off += xtrIDLen
	} else if off, err = parseXTRTrailer(b, off, m.XTRIDPresent, &m.XTRID, &m.SiteID); err != nil {
		return fmt.Errorf("Map-Request: %w", err)
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the Map-Request", ErrBadLength, len(b)-off)
	}
	return nil
}

// flag returns bit when set is true.
func flag(set bool, bit uint32) uint32 {
	if set {
		return bit
	}
	return 0
}

// resetRecord clears r for reuse, keeping the capacity of its slices.
func resetRecord(r *Record) {
	locs := r.Locators[:0]
	r.EID.reset()
	eid := r.EID
	*r = Record{EID: eid, Locators: locs}
}
