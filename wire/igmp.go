package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// RecordType is the type of a group record of an IGMPv3 report (RFC 3376
// §4.2.12) or a multicast address record of an MLDv2 report (RFC 3810
// §5.2.12). Version 1 and 2 messages are expressed with the same types
// (RFC 3376 §7.3.2, RFC 3810 §8.3.2): a report is IsExclude with no
// sources (join of (*,G)), a leave or done is ToInclude with no sources.
type RecordType uint8

// Group record types (RFC 3376 §4.2.12, RFC 3810 §5.2.12).
const (
	ModeIsInclude    RecordType = 1 // MODE_IS_INCLUDE: current state, include Sources
	ModeIsExclude    RecordType = 2 // MODE_IS_EXCLUDE: current state, exclude Sources
	ChangeToInclude  RecordType = 3 // CHANGE_TO_INCLUDE_MODE: filter-mode change
	ChangeToExclude  RecordType = 4 // CHANGE_TO_EXCLUDE_MODE: filter-mode change
	AllowNewSources  RecordType = 5 // ALLOW_NEW_SOURCES: source-list change
	BlockOldSources  RecordType = 6 // BLOCK_OLD_SOURCES: source-list change
	maxRecordType               = BlockOldSources
	igmpTypeQuery               = 0x11 // RFC 3376 §4.1
	igmpTypeV1Report            = 0x12 // RFC 1112 appendix I
	igmpTypeV2Report            = 0x16 // RFC 2236 §2.1
	igmpTypeV2Leave             = 0x17 // RFC 2236 §2.1
	igmpTypeV3Report            = 0x22 // RFC 3376 §4.2
	igmpV2Len                   = 8    // RFC 2236 §2
	igmpV3QueryMin              = 12   // RFC 3376 §4.1
	igmpV3ReportHdr             = 8    // RFC 3376 §4.2
	igmpV3RecordHdr             = 8    // RFC 3376 §4.2.4
)

// String returns the record type's name as the RFCs write it.
func (t RecordType) String() string {
	switch t {
	case ModeIsInclude:
		return "MODE_IS_INCLUDE"
	case ModeIsExclude:
		return "MODE_IS_EXCLUDE"
	case ChangeToInclude:
		return "CHANGE_TO_INCLUDE_MODE"
	case ChangeToExclude:
		return "CHANGE_TO_EXCLUDE_MODE"
	case AllowNewSources:
		return "ALLOW_NEW_SOURCES"
	case BlockOldSources:
		return "BLOCK_OLD_SOURCES"
	}
	return fmt.Sprintf("record-type-%d", uint8(t))
}

// Include reports whether the record leaves the group in include mode
// (its sources are the ones wanted) as opposed to exclude mode (every
// source but its sources is wanted). For the source-list-change types it
// reports whether the sources are added (Allow) to an include list.
func (t RecordType) Include() bool {
	return t == ModeIsInclude || t == ChangeToInclude || t == AllowNewSources
}

// GroupRecord is one group record of a membership report: a group, a
// filter mode (expressed by Type) and sources (RFC 3376 §4.2.4, RFC 3810
// §5.2.4). Sources aliases the parsing Membership's storage.
type GroupRecord struct {
	// Type is the record type (RFC 3376 §4.2.12, RFC 3810 §5.2.12).
	Type RecordType
	// Group is the multicast address (RFC 3376 §4.2.8, RFC 3810 §5.2.8).
	Group netip.Addr
	// Sources are the source addresses (RFC 3376 §4.2.9, RFC 3810 §5.2.9).
	Sources []netip.Addr
}

// Membership is a parsed IGMP (RFC 2236, RFC 3376) or MLD (RFC 2710,
// RFC 3810) message. Reports and leaves become Records; a query sets Query
// and, for a group-specific query, QueryGroup. Parse methods reuse the
// struct's slices, so a Membership parsed into repeatedly does not allocate
// once its slices have grown.
type Membership struct {
	// MLD tells an MLD message from an IGMP one.
	MLD bool
	// Version is the protocol version of the message: IGMP 1, 2 or 3, MLD 1
	// or 2 (a query's version follows from its length, RFC 3376 §7.1,
	// RFC 3810 §8.1).
	Version uint8
	// Query is set for a membership query; Records is then empty.
	Query bool
	// QueryGroup is the group of a group-specific query; the unspecified
	// address for a general query (RFC 3376 §4.1.3, RFC 3810 §5.1.5).
	QueryGroup netip.Addr
	// Records are the group records of a report, one for a version 1/2
	// report, leave or done.
	Records []GroupRecord

	srcs []netip.Addr
	offs []int // start of each record's sources in srcs
}

func (m *Membership) reset(mld bool) {
	m.MLD = mld
	m.Version = 0
	m.Query = false
	m.QueryGroup = netip.Addr{}
	m.Records = m.Records[:0]
	m.srcs = m.srcs[:0]
	m.offs = m.offs[:0]
}

// finish points every record's Sources into srcs, once srcs no longer
// grows.
func (m *Membership) finish() {
	for i := range m.Records {
		end := len(m.srcs)
		if i+1 < len(m.offs) {
			end = m.offs[i+1]
		}
		m.Records[i].Sources = m.srcs[m.offs[i]:end:end]
	}
}

func (m *Membership) addRecord(t RecordType, g netip.Addr) {
	m.Records = append(m.Records, GroupRecord{Type: t, Group: g})
	m.offs = append(m.offs, len(m.srcs))
}

// ParseIGMP parses an IGMP message (the IP payload, RFC 2236 §2, RFC 3376
// §4) and verifies its checksum. Version 1 and 2 reports become one
// ModeIsExclude record without sources, a leave one ChangeToInclude record
// without sources. Every group must be a multicast address. Unknown types
// are refused with ErrBadType.
func (m *Membership) ParseIGMP(b []byte) error {
	m.reset(false)
	if len(b) < igmpV2Len {
		return fmt.Errorf("%w: IGMP message of %d bytes", ErrTruncated, len(b))
	}
	if Checksum(b, 0) != 0xffff {
		return fmt.Errorf("%w: IGMP checksum", ErrBadValue)
	}
	t := b[0]
	switch t {
	case igmpTypeQuery:
		// RFC 3376 §7.1: 8 bytes is a v1/v2 query, 12 or more a v3 query,
		// anything else is ignored.
		m.Query = true
		m.QueryGroup = netip.AddrFrom4([4]byte(b[4:8]))
		switch {
		case len(b) == igmpV2Len:
			m.Version = 2
			if b[1] == 0 {
				m.Version = 1
			}
		case len(b) >= igmpV3QueryMin:
			m.Version = 3
			n := int(binary.BigEndian.Uint16(b[10:12]))
			if len(b) < igmpV3QueryMin+4*n {
				return fmt.Errorf("%w: IGMPv3 query with %d sources", ErrTruncated, n)
			}
		default:
			return fmt.Errorf("%w: IGMP query of %d bytes", ErrBadLength, len(b))
		}
		if g := m.QueryGroup; !g.IsUnspecified() && !g.IsMulticast() {
			return fmt.Errorf("%w: IGMP query group %v", ErrBadValue, g)
		}
		return nil
	case igmpTypeV1Report, igmpTypeV2Report, igmpTypeV2Leave:
		// RFC 2236 §2: exactly 8 bytes are meaningful; more are ignored.
		m.Version = 2
		if t == igmpTypeV1Report {
			m.Version = 1
		}
		return m.addSingle(netip.AddrFrom4([4]byte(b[4:8])), t == igmpTypeV2Leave, "IGMP group")
	case igmpTypeV3Report:
		m.Version = 3
		return m.parseRecords(b[igmpV3ReportHdr:], int(binary.BigEndian.Uint16(b[6:8])), 4, "IGMPv3 group record")
	}
	return fmt.Errorf("%w: IGMP type %#x", ErrBadType, t)
}

// addSingle records the one group of an IGMPv1/v2 or MLDv1 report (a (*,G)
// join, RFC 2236 §3, RFC 2710 §4) or leave/done message.
func (m *Membership) addSingle(g netip.Addr, leave bool, what string) error {
	if !g.IsMulticast() {
		return fmt.Errorf("%w: %s %v is not multicast", ErrBadValue, what, g)
	}
	rt := ModeIsExclude
	if leave {
		rt = ChangeToInclude
	}
	m.addRecord(rt, g)
	m.finish()
	return nil
}

// parseRecords reads the n group records of an IGMPv3 or MLDv2 report (RFC
// 3376 §4.2, RFC 3810 §5.2) from b.
func (m *Membership) parseRecords(b []byte, n, addrLen int, what string) error {
	off := 0
	for i := range n {
		used, err := m.parseRecord(b[off:], addrLen)
		if err != nil {
			return fmt.Errorf("%s %d: %w", what, i, err)
		}
		off += used
	}
	m.finish()
	return nil
}

// parseRecord reads one group record of an IGMPv3 or MLDv2 report with
// addresses of alen bytes and returns its length.
func (m *Membership) parseRecord(b []byte, alen int) (int, error) {
	hdr := 4 + alen
	if len(b) < hdr {
		return 0, fmt.Errorf("%w: group record header", ErrTruncated)
	}
	rt := RecordType(b[0])
	aux := int(b[1]) * 4
	ns := int(binary.BigEndian.Uint16(b[2:4]))
	n := hdr + ns*alen + aux
	if len(b) < n {
		return 0, fmt.Errorf("%w: group record with %d sources and %d aux bytes", ErrTruncated, ns, aux)
	}
	if rt == 0 || rt > maxRecordType {
		return 0, fmt.Errorf("%w: record type %d", ErrBadValue, rt)
	}
	g := addrFrom(b[4:hdr])
	if !g.IsMulticast() {
		return 0, fmt.Errorf("%w: group %v is not multicast", ErrBadValue, g)
	}
	m.addRecord(rt, g)
	for j := range ns {
		s := addrFrom(b[hdr+j*alen : hdr+(j+1)*alen])
		if s.IsMulticast() || s.IsUnspecified() {
			return 0, fmt.Errorf("%w: source %v", ErrBadValue, s)
		}
		m.srcs = append(m.srcs, s)
	}
	return n, nil
}

func addrFrom(b []byte) netip.Addr {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}

// AppendIGMPv3Report appends an IGMPv3 membership report (RFC 3376 §4.2)
// with the records and a valid checksum. It is used by tests and tools
// that inject reports.
func AppendIGMPv3Report(b []byte, recs []GroupRecord) ([]byte, error) {
	if len(recs) > 0xffff {
		return b, fmt.Errorf("%w: %d group records", ErrTooLarge, len(recs))
	}
	start := len(b)
	b = append(b, igmpTypeV3Report, 0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(recs)))
	for i := range recs {
		r := &recs[i]
		if !r.Group.Is4() || len(r.Sources) > 0xffff {
			return b[:start], fmt.Errorf("%w: IGMPv3 record %d", ErrBadValue, i)
		}
		b = append(b, byte(r.Type), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Sources)))
		g := r.Group.As4()
		b = append(b, g[:]...)
		for _, s := range r.Sources {
			if !s.Is4() {
				return b[:start], fmt.Errorf("%w: IGMPv3 record %d source %v", ErrBadAFI, i, s)
			}
			a := s.As4()
			b = append(b, a[:]...)
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], ^Checksum(b[start:], 0))
	return b, nil
}

// AppendIGMPv2 appends an IGMPv2 report or, when leave is set, a leave
// (RFC 2236 §2) for the IPv4 group g, with a valid checksum.
func AppendIGMPv2(b []byte, g netip.Addr, leave bool) ([]byte, error) {
	if !g.Is4() {
		return b, fmt.Errorf("%w: IGMPv2 group %v", ErrBadAFI, g)
	}
	start := len(b)
	t := byte(igmpTypeV2Report)
	if leave {
		t = igmpTypeV2Leave
	}
	a := g.As4()
	b = append(b, t, 0, 0, 0, a[0], a[1], a[2], a[3])
	binary.BigEndian.PutUint16(b[start+2:], ^Checksum(b[start:], 0))
	return b, nil
}
