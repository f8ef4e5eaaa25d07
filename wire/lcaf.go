package wire

import (
	"encoding/binary"
	"fmt"
)

// LCAFType is the Type field of an LCAF header (RFC 8060 §3).
type LCAFType uint8

// LCAF types (RFC 8060 §3, IANA "LISP LCAF Type").
const (
	LCAFNull       LCAFType = 0  // RFC 8060 §3
	LCAFAFIList    LCAFType = 1  // RFC 8060 §4.1
	LCAFInstanceID LCAFType = 2  // RFC 8060 §4.1
	LCAFASNumber   LCAFType = 3  // RFC 8060 §4.1
	LCAFGeo        LCAFType = 5  // RFC 8060 §4.3
	LCAFNATT       LCAFType = 7  // RFC 8060 §4.4
	LCAFMcastInfo  LCAFType = 9  // RFC 8060 §4.5
	LCAFELP        LCAFType = 10 // RFC 8060 §4.6
	LCAFSecKey     LCAFType = 11 // RFC 8060 §4.7
	LCAFSrcDst     LCAFType = 12 // RFC 8060 §4.8
	LCAFRLE        LCAFType = 13 // RFC 8060 §4.9
	LCAFJSON       LCAFType = 14 // RFC 8060 §4.10.1
	LCAFKeyValue   LCAFType = 15 // RFC 8060 §4.10.2
)

// Bits of the Rsvd2 byte that some LCAF types define.
const (
	// McastRP is the R bit of the multicast-info LCAF: the source is an RP
	// (RFC 8060 §4.5).
	McastRP uint8 = 0x04
	// McastLeave is the L bit of the multicast-info LCAF: a leave/prune
	// (RFC 8060 §4.5).
	McastLeave uint8 = 0x02
	// McastJoin is the J bit of the multicast-info LCAF: a join (RFC 8060 §4.5).
	McastJoin uint8 = 0x01
	// JSONBinary is the B bit of the JSON LCAF: the JSON field is binary
	// encoded rather than text (RFC 8060 §4.10.1).
	JSONBinary uint8 = 0x01
)

// GeoNoAltitude is the Altitude value meaning "no altitude encoded"
// (RFC 8060 §4.3).
const GeoNoAltitude int32 = 0x7fffffff

// LCAF is a LISP Canonical Address (RFC 8060 §3). Which fields are used
// depends on Type; see the comment of each field. Unknown types keep their
// body verbatim in Raw and are re-emitted unchanged.
type LCAF struct {
	// Type is the LCAF type (RFC 8060 §3).
	Type LCAFType
	// Rsvd1 and Flags are the two bytes after the LCAF AFI (RFC 8060 §3),
	// kept so that a re-emitted LCAF is unchanged.
	Rsvd1, Flags uint8
	// Rsvd2 is the type-specific byte after Type (RFC 8060 §3). For the
	// instance-ID type it is the IID mask length (RFC 8060 §4.1); for
	// multicast-info it holds the R, L and J bits (McastRP, McastLeave,
	// McastJoin, RFC 8060 §4.5); for JSON the B bit (JSONBinary, RFC 8060
	// §4.10.1). Other bits are kept for re-emission.
	Rsvd2 uint8
	// IID is the 32-bit instance-ID of types 2 and 9 (RFC 8060 §4.1, §4.5).
	IID uint32
	// ASN is the AS number of type 3 (RFC 8060 §4.1).
	ASN uint32
	// SrcMaskLen and DstMaskLen are the source and group/destination mask
	// lengths of types 9 and 12 (RFC 8060 §4.5, §4.8).
	SrcMaskLen, DstMaskLen uint8
	// Reserved is the 16-bit reserved field before the mask lengths of types
	// 9 and 12 (RFC 8060 §4.5, §4.8), kept for re-emission.
	Reserved uint16
	// MSPort and ETRPort are the Map-Server and ETR UDP ports of type 7
	// (RFC 8060 §4.4).
	MSPort, ETRPort uint16
	// Geo is the position of type 5 (RFC 8060 §4.3).
	Geo Geo
	// Key is the key section of type 11 (RFC 8060 §4.7).
	Key SecurityKey
	// ELP is the list of re-encapsulation hops of type 10 (RFC 8060 §4.6).
	ELP []ELPHop
	// RLE is the replication list of type 13 (RFC 8060 §4.9).
	RLE []RLENode
	// Addrs holds the nested addresses: the list of type 1; the single
	// address of types 2, 3 and 5; the optional address of types 11 and 14;
	// source then group of type 9; source then destination of type 12; key
	// then value of type 15; for type 7 the Global ETR RLOC, MS RLOC, Private
	// ETR RLOC, then the RTR RLOCs (RFC 8060 §4.4).
	Addrs []Address
	// Raw is the body of an unknown LCAF type, re-emitted unchanged; for type
	// 14 the JSON text (RFC 8060 §4.10.1).
	Raw []byte
}

// Geo is the body of a geo-coordinates LCAF before its address (RFC 8060
// §4.3): latitude and longitude in degrees, minutes and seconds, and an
// altitude. RFC 8060's type 5 has no radius field (the radius belongs to the
// newer encoding of draft-ietf-lisp-geo, a different LCAF type).
type Geo struct {
	// North is the N bit: the latitude is north of the equator (RFC 8060 §4.3).
	North bool
	// LatDegrees is the 15-bit latitude degrees (0..90) (RFC 8060 §4.3).
	LatDegrees uint16
	// LatMinutes and LatSeconds complete the latitude (RFC 8060 §4.3).
	LatMinutes, LatSeconds uint8
	// East is the E bit: the longitude is east of Greenwich (RFC 8060 §4.3).
	East bool
	// LonDegrees is the 15-bit longitude degrees (0..180) (RFC 8060 §4.3).
	LonDegrees uint16
	// LonMinutes and LonSeconds complete the longitude (RFC 8060 §4.3).
	LonMinutes, LonSeconds uint8
	// Altitude is the height above sea level in meters, two's complement;
	// GeoNoAltitude means none (RFC 8060 §4.3).
	Altitude int32
}

// SecurityKey is the key section of a security-key LCAF (RFC 8060 §4.7).
type SecurityKey struct {
	// Algorithm is the Key Algorithm field (RFC 8060 §4.7; for LISP crypto
	// the cipher suite, RFC 8061 §3).
	Algorithm uint8
	// Revoked is the R bit: the key is revoked (RFC 8060 §4.7).
	Revoked bool
	// Rsvd3 is the reserved byte after Key Count, kept for re-emission.
	Rsvd3 uint8
	// Rsvd4 is the 7 reserved bits before the R bit (0..127), kept for
	// re-emission.
	Rsvd4 uint8
	// Keys holds the material of each key section; Key Count is len(Keys)
	// and each Key Length is the length of its material (RFC 8060 §4.7).
	Keys [][]byte
}

// ELPHop is one re-encapsulation hop of an explicit locator path (RFC 8060
// §4.6).
type ELPHop struct {
	// Lookup is the L bit: look the hop's address up in the mapping system
	// to get its RLOCs (RFC 8060 §4.6).
	Lookup bool
	// Probe is the P bit: RLOC-probe this hop (RFC 8060 §4.6).
	Probe bool
	// Strict is the S bit: the hop must be used (RFC 8060 §4.6).
	Strict bool
	// Rsvd is the 13-bit Rsvd3 field before the flags, kept for re-emission.
	Rsvd uint16
	// Address is the hop's address (RFC 8060 §4.6).
	Address Address
}

// RLENode is one entry of a replication list (RFC 8060 §4.9).
type RLENode struct {
	// Level is the replication level: ITRs replicate to the lowest level,
	// RTRs to the next one up (RFC 8060 §4.9; draft-coras-lisp-re).
	Level uint8
	// Address is the RTR or ETR the entry replicates to (RFC 8060 §4.9).
	Address Address
	// Name is an RLOC name that some peers (lispers.net) append to the
	// entry: an AFI-17 distinguished name (draft-ietf-lisp-name-encoding)
	// right after the entry's address and inside the RLE length. It is kept
	// with the entry and re-emitted after its address. Empty means none; an
	// empty appended name on the wire is refused, since it could not be
	// told apart from none when re-emitted.
	Name string
	// Rsvd holds the three reserved bytes before the level (Rsvd3 and
	// Rsvd4, RFC 8060 §4.9), kept for re-emission.
	Rsvd [3]byte
}

// Fixed body lengths of LCAF types before their addresses (RFC 8060 §4).
const (
	lcafIIDFixed    = 4  // Instance ID (§4.1)
	lcafASFixed     = 4  // AS Number (§4.1)
	lcafGeoFixed    = 12 // latitude, longitude, altitude (§4.3)
	lcafNATFixed    = 4  // MS UDP port, ETR UDP port (§4.4)
	lcafMcastFixed  = 8  // Instance-ID, Reserved, mask lengths (§4.5)
	lcafSrcDstFixed = 4  // Reserved, mask lengths (§4.8)
	lcafKeyFixed    = 4  // Key Count, Rsvd3, Key Algorithm, Rsvd4+R (§4.7)
	lcafJSONFixed   = 2  // JSON length (§4.10.1)
	elpHopFixed     = 2  // Rsvd3 + L/P/S (§4.6)
	rleNodeFixed    = 4  // Rsvd3, Rsvd4, Level (§4.9)
	maxLCAFBody     = 0xffff
)

// ELP hop flag bits (RFC 8060 §4.6).
const (
	elpFlagL = 0x4
	elpFlagP = 0x2
	elpFlagS = 0x1
)

// reset clears l for reuse, keeping the capacity of its slices (and so the
// elements, with their own slices, left in that capacity).
//
// Fields are cleared one by one and slices truncated in place: that writes
// no pointers, which a whole-struct assignment would (with write barriers).
func (l *LCAF) reset() {
	l.Type, l.Rsvd1, l.Flags, l.Rsvd2 = 0, 0, 0, 0
	l.IID, l.ASN = 0, 0
	l.SrcMaskLen, l.DstMaskLen, l.Reserved = 0, 0, 0
	l.MSPort, l.ETRPort = 0, 0
	l.Geo = Geo{}
	l.Key.Algorithm, l.Key.Revoked, l.Key.Rsvd3, l.Key.Rsvd4 = 0, false, 0, 0
	l.Key.Keys = l.Key.Keys[:0]
	l.ELP = l.ELP[:0]
	l.RLE = l.RLE[:0]
	l.Addrs = l.Addrs[:0]
	l.Raw = l.Raw[:0]
}

// nameLen is the encoded length of an RLE entry's appended name.
func (n *RLENode) nameLen() int {
	if n.Name == "" {
		return 0
	}
	return 2 + len(n.Name) + 1
}

func addrsLen(as []Address) int {
	n := 0
	for i := range as {
		n += as[i].Len()
	}
	return n
}

// bodyLen returns the LCAF length field: the bytes after the Length field.
func (l *LCAF) bodyLen() int {
	switch l.Type {
	case LCAFAFIList, LCAFKeyValue:
		return addrsLen(l.Addrs)
	case LCAFInstanceID:
		return lcafIIDFixed + addrsLen(l.Addrs)
	case LCAFASNumber:
		return lcafASFixed + addrsLen(l.Addrs)
	case LCAFGeo:
		return lcafGeoFixed + addrsLen(l.Addrs)
	case LCAFNATT:
		return lcafNATFixed + addrsLen(l.Addrs)
	case LCAFMcastInfo:
		return lcafMcastFixed + addrsLen(l.Addrs)
	case LCAFSrcDst:
		return lcafSrcDstFixed + addrsLen(l.Addrs)
	case LCAFELP:
		n := 0
		for i := range l.ELP {
			n += elpHopFixed + l.ELP[i].Address.Len()
		}
		return n
	case LCAFRLE:
		n := 0
		for i := range l.RLE {
			n += rleNodeFixed + l.RLE[i].Address.Len() + l.RLE[i].nameLen()
		}
		return n
	case LCAFSecKey:
		n := lcafKeyFixed
		for _, k := range l.Key.Keys {
			n += 2 + len(k)
		}
		return n + addrsLen(l.Addrs)
	case LCAFJSON:
		return lcafJSONFixed + len(l.Raw) + addrsLen(l.Addrs)
	}
	return len(l.Raw)
}

// addrCount returns how many nested addresses (in Addrs) type t takes, as a
// range; max < 0 means no limit.
func addrCount(t LCAFType) (min, max int) {
	switch t {
	case LCAFAFIList:
		return 0, -1
	case LCAFInstanceID, LCAFSecKey, LCAFJSON:
		return 0, 1
	case LCAFASNumber, LCAFGeo:
		return 1, 1
	case LCAFMcastInfo, LCAFSrcDst, LCAFKeyValue:
		return 2, 2
	case LCAFNATT:
		return 3, -1
	}
	return 0, 0
}

// check refuses an LCAF that could not be encoded so that it parses back the
// same, before anything is written.
func (l *LCAF) check() error {
	min, max := addrCount(l.Type)
	if n := len(l.Addrs); (min > 0 || max >= 0) && (n < min || (max >= 0 && n > max)) {
		return fmt.Errorf("%w: LCAF type %d with %d addresses", ErrBadValue, l.Type, n)
	}
	switch l.Type {
	case LCAFGeo:
		if l.Geo.LatDegrees > 0x7fff || l.Geo.LonDegrees > 0x7fff {
			return fmt.Errorf("%w: geo degrees do not fit 15 bits", ErrBadValue)
		}
	case LCAFELP:
		for i := range l.ELP {
			if l.ELP[i].Rsvd > 0x1fff {
				return fmt.Errorf("%w: ELP hop %d reserved bits", ErrBadValue, i)
			}
		}
	case LCAFSecKey:
		if len(l.Key.Keys) > 255 || l.Key.Rsvd4 > 0x7f {
			return fmt.Errorf("%w: %d keys / rsvd4 %#x in security-key LCAF", ErrBadValue, len(l.Key.Keys), l.Key.Rsvd4)
		}
		for i, k := range l.Key.Keys {
			if len(k) > 0xffff {
				return fmt.Errorf("%w: key %d of %d bytes", ErrTooLarge, i, len(k))
			}
		}
	case LCAFJSON:
		if len(l.Raw) > 0xffff {
			return fmt.Errorf("%w: JSON of %d bytes", ErrTooLarge, len(l.Raw))
		}
	case LCAFRLE:
		for i := range l.RLE {
			n := &l.RLE[i]
			if err := checkName(n.Name); err != nil {
				return fmt.Errorf("RLE entry %d name: %w", i, err)
			}
			// An entry following a nameless one must not start with what
			// reads as an appended name (AFI 17), or it would parse back as
			// that name.
			if i > 0 && l.RLE[i-1].Name == "" && n.Rsvd[0] == 0 && n.Rsvd[1] == byte(AFIDistName) {
				return fmt.Errorf("%w: RLE entry %d reserved bytes read as a name AFI", ErrBadValue, i)
			}
		}
	}
	return nil
}

func checkName(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%w: distinguished name contains NUL", ErrBadValue)
		}
	}
	return nil
}

// append appends the LCAF (its AFI included) to b.
func (l *LCAF) append(b []byte, depth int) ([]byte, error) {
	if depth > maxAddressDepth {
		return b, fmt.Errorf("%w: LCAF nested too deeply", ErrTooLarge)
	}
	if err := l.check(); err != nil {
		return b, err
	}
	n := l.bodyLen()
	if n > maxLCAFBody {
		return b, fmt.Errorf("%w: LCAF type %d body of %d bytes", ErrTooLarge, l.Type, n)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(AFILCAF))
	b = append(b, l.Rsvd1, l.Flags, byte(l.Type), l.Rsvd2)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	start := len(b)
	var err error
	switch l.Type {
	case LCAFAFIList, LCAFKeyValue:
	case LCAFInstanceID:
		b = binary.BigEndian.AppendUint32(b, l.IID)
	case LCAFASNumber:
		b = binary.BigEndian.AppendUint32(b, l.ASN)
	case LCAFGeo:
		b = l.Geo.append(b)
	case LCAFNATT:
		b = binary.BigEndian.AppendUint16(b, l.MSPort)
		b = binary.BigEndian.AppendUint16(b, l.ETRPort)
	case LCAFMcastInfo:
		b = binary.BigEndian.AppendUint32(b, l.IID)
		b = binary.BigEndian.AppendUint16(b, l.Reserved)
		b = append(b, l.SrcMaskLen, l.DstMaskLen)
	case LCAFSrcDst:
		b = binary.BigEndian.AppendUint16(b, l.Reserved)
		b = append(b, l.SrcMaskLen, l.DstMaskLen)
	case LCAFSecKey:
		k := &l.Key
		r := k.Rsvd4 << 1
		if k.Revoked {
			r |= 1
		}
		b = append(b, byte(len(k.Keys)), k.Rsvd3, k.Algorithm, r)
		for _, m := range k.Keys {
			b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
			b = append(b, m...)
		}
	case LCAFJSON:
		b = binary.BigEndian.AppendUint16(b, uint16(len(l.Raw)))
		b = append(b, l.Raw...)
	case LCAFELP:
		for i := range l.ELP {
			h := &l.ELP[i]
			f := h.Rsvd << 3
			if h.Lookup {
				f |= elpFlagL
			}
			if h.Probe {
				f |= elpFlagP
			}
			if h.Strict {
				f |= elpFlagS
			}
			b = binary.BigEndian.AppendUint16(b, f)
			if b, err = h.Address.appendDepth(b, depth+1); err != nil {
				return b, fmt.Errorf("ELP hop %d: %w", i, err)
			}
		}
	case LCAFRLE:
		for i := range l.RLE {
			e := &l.RLE[i]
			b = append(b, e.Rsvd[0], e.Rsvd[1], e.Rsvd[2], e.Level)
			if b, err = e.Address.appendDepth(b, depth+1); err != nil {
				return b, fmt.Errorf("RLE entry %d: %w", i, err)
			}
			if e.Name != "" {
				b = binary.BigEndian.AppendUint16(b, uint16(AFIDistName))
				b = append(b, e.Name...)
				b = append(b, 0)
			}
		}
	default:
		b = append(b, l.Raw...)
	}
	if min, max := addrCount(l.Type); min > 0 || max != 0 {
		for i := range l.Addrs {
			if b, err = l.Addrs[i].appendDepth(b, depth+1); err != nil {
				return b, err
			}
		}
	}
	if len(b)-start != n {
		// Len and Append disagree: a bug, never a malformed packet.
		return b, fmt.Errorf("%w: LCAF type %d wrote %d body bytes, announced %d", ErrBadLength, l.Type, len(b)-start, n)
	}
	return b, nil
}

func (g *Geo) append(b []byte) []byte {
	lat, lon := g.LatDegrees, g.LonDegrees
	if g.North {
		lat |= 0x8000
	}
	if g.East {
		lon |= 0x8000
	}
	b = binary.BigEndian.AppendUint16(b, lat)
	b = append(b, g.LatMinutes, g.LatSeconds)
	b = binary.BigEndian.AppendUint16(b, lon)
	b = append(b, g.LonMinutes, g.LonSeconds)
	return binary.BigEndian.AppendUint32(b, uint32(g.Altitude))
}

func (g *Geo) parse(b []byte) {
	lat, lon := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[4:])
	*g = Geo{
		North: lat&0x8000 != 0, LatDegrees: lat & 0x7fff, LatMinutes: b[2], LatSeconds: b[3],
		East: lon&0x8000 != 0, LonDegrees: lon & 0x7fff, LonMinutes: b[6], LonSeconds: b[7],
		Altitude: int32(binary.BigEndian.Uint32(b[8:])),
	}
}

// parse reads an LCAF whose AFI has been consumed and returns the bytes used.
// The Length field must cover the body exactly: a known type with bytes left
// over after its last field is refused.
func (l *LCAF) parse(b []byte, depth int) (int, error) {
	if depth > maxAddressDepth {
		return 0, fmt.Errorf("%w: LCAF nested too deeply", ErrBadValue)
	}
	if len(b) < lcafHeaderLen {
		return 0, fmt.Errorf("%w: LCAF header", ErrTruncated)
	}
	l.Rsvd1, l.Flags, l.Type, l.Rsvd2 = b[0], b[1], LCAFType(b[2]), b[3]
	n := int(binary.BigEndian.Uint16(b[4:]))
	if len(b) < lcafHeaderLen+n {
		return 0, fmt.Errorf("%w: LCAF type %d length %d beyond buffer", ErrTruncated, l.Type, n)
	}
	body := b[lcafHeaderLen : lcafHeaderLen+n]
	fixed := 0
	switch l.Type {
	case LCAFAFIList, LCAFKeyValue:
	case LCAFInstanceID:
		fixed = lcafIIDFixed
		if len(body) >= fixed {
			l.IID = binary.BigEndian.Uint32(body)
		}
	case LCAFASNumber:
		fixed = lcafASFixed
		if len(body) >= fixed {
			l.ASN = binary.BigEndian.Uint32(body)
		}
	case LCAFGeo:
		fixed = lcafGeoFixed
		if len(body) >= fixed {
			l.Geo.parse(body)
		}
	case LCAFNATT:
		fixed = lcafNATFixed
		if len(body) >= fixed {
			l.MSPort, l.ETRPort = binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
		}
	case LCAFMcastInfo:
		fixed = lcafMcastFixed
		if len(body) >= fixed {
			l.IID = binary.BigEndian.Uint32(body)
			l.Reserved = binary.BigEndian.Uint16(body[4:])
			l.SrcMaskLen, l.DstMaskLen = body[6], body[7]
		}
	case LCAFSrcDst:
		fixed = lcafSrcDstFixed
		if len(body) >= fixed {
			l.Reserved = binary.BigEndian.Uint16(body)
			l.SrcMaskLen, l.DstMaskLen = body[2], body[3]
		}
	case LCAFSecKey:
		k, err := l.parseKeys(body)
		if err != nil {
			return 0, err
		}
		fixed = k
	case LCAFJSON:
		if len(body) >= lcafJSONFixed {
			fixed = lcafJSONFixed + int(binary.BigEndian.Uint16(body))
			if len(body) >= fixed {
				l.Raw = append(l.Raw[:0], body[lcafJSONFixed:fixed]...)
			}
		} else {
			fixed = lcafJSONFixed
		}
	case LCAFELP:
		if err := l.parseELP(body, depth); err != nil {
			return 0, err
		}
		return lcafHeaderLen + n, nil
	case LCAFRLE:
		if err := l.parseRLE(body, depth); err != nil {
			return 0, err
		}
		return lcafHeaderLen + n, nil
	default:
		l.Raw = append(l.Raw[:0], body...)
		return lcafHeaderLen + n, nil
	}
	if len(body) < fixed {
		return 0, fmt.Errorf("%w: LCAF type %d length %d shorter than its %d fixed bytes", ErrBadLength, l.Type, n, fixed)
	}
	min, max := addrCount(l.Type)
	if err := l.parseAddrs(body[fixed:], depth, min, max); err != nil {
		return 0, err
	}
	return lcafHeaderLen + n, nil
}

// parseAddrs parses body as a sequence of addresses into l.Addrs, exactly
// filling body; there must be at least min and (when max >= 0) at most max.
func (l *LCAF) parseAddrs(body []byte, depth, min, max int) error {
	for len(body) > 0 {
		if max >= 0 && len(l.Addrs) == max {
			return fmt.Errorf("%w: LCAF type %d has %d trailing bytes", ErrBadLength, l.Type, len(body))
		}
		l.Addrs = growOne(l.Addrs)
		n, err := l.Addrs[len(l.Addrs)-1].parse(body, depth+1)
		if err != nil {
			return fmt.Errorf("LCAF type %d address %d: %w", l.Type, len(l.Addrs)-1, err)
		}
		body = body[n:]
	}
	if len(l.Addrs) < min {
		return fmt.Errorf("%w: LCAF type %d has %d addresses, needs %d", ErrBadLength, l.Type, len(l.Addrs), min)
	}
	return nil
}

// parseKeys reads the key sections of a security-key LCAF (RFC 8060 §4.7)
// and returns the bytes they use.
func (l *LCAF) parseKeys(body []byte) (int, error) {
	if len(body) < lcafKeyFixed {
		return 0, fmt.Errorf("%w: security-key LCAF of %d bytes", ErrBadLength, len(body))
	}
	k := &l.Key
	count := int(body[0])
	k.Rsvd3, k.Algorithm, k.Rsvd4, k.Revoked = body[1], body[2], body[3]>>1, body[3]&1 != 0
	off := lcafKeyFixed
	if count*2 > len(body)-off {
		return 0, fmt.Errorf("%w: %d keys announced in %d bytes", ErrBadLength, count, len(body)-off)
	}
	for i := 0; i < count; i++ {
		if len(body)-off < 2 {
			return 0, fmt.Errorf("%w: key %d length", ErrBadLength, i)
		}
		kl := int(binary.BigEndian.Uint16(body[off:]))
		off += 2
		if len(body)-off < kl {
			return 0, fmt.Errorf("%w: key %d of %d bytes beyond LCAF", ErrBadLength, i, kl)
		}
		k.Keys = growOne(k.Keys)
		j := len(k.Keys) - 1
		k.Keys[j] = append(k.Keys[j][:0], body[off:off+kl]...)
		off += kl
	}
	return off, nil
}

// parseELP reads the hops of an explicit locator path (RFC 8060 §4.6).
func (l *LCAF) parseELP(body []byte, depth int) error {
	for len(body) > 0 {
		if len(body) < elpHopFixed {
			return fmt.Errorf("%w: ELP hop %d flags", ErrBadLength, len(l.ELP))
		}
		f := binary.BigEndian.Uint16(body)
		l.ELP = growOne(l.ELP)
		h := &l.ELP[len(l.ELP)-1]
		h.Lookup, h.Probe, h.Strict, h.Rsvd = f&elpFlagL != 0, f&elpFlagP != 0, f&elpFlagS != 0, f>>3
		n, err := h.Address.parse(body[elpHopFixed:], depth+1)
		if err != nil {
			return fmt.Errorf("ELP hop %d: %w", len(l.ELP)-1, err)
		}
		body = body[elpHopFixed+n:]
	}
	return nil
}

// parseRLE reads the entries of a replication list (RFC 8060 §4.9). The body
// is parsed by length: after an entry's address, an AFI-17 distinguished
// name (as lispers.net appends) is taken as that entry's RLOC name.
func (l *LCAF) parseRLE(body []byte, depth int) error {
	for len(body) > 0 {
		if len(body) < rleNodeFixed {
			return fmt.Errorf("%w: RLE entry %d header", ErrBadLength, len(l.RLE))
		}
		l.RLE = growOne(l.RLE)
		i := len(l.RLE) - 1
		e := &l.RLE[i]
		oldName := e.Name
		e.Rsvd, e.Level, e.Name = [3]byte(body[:3]), body[3], ""
		n, err := e.Address.parse(body[rleNodeFixed:], depth+1)
		if err != nil {
			return fmt.Errorf("RLE entry %d: %w", i, err)
		}
		body = body[rleNodeFixed+n:]
		if len(body) >= 2 && AFI(binary.BigEndian.Uint16(body)) == AFIDistName {
			j := 2
			for j < len(body) && body[j] != 0 {
				j++
			}
			if j == len(body) {
				return fmt.Errorf("%w: RLE entry %d name without NUL", ErrBadLength, i)
			}
			if j == 2 {
				// An empty name could not be re-emitted: Name "" means none.
				return fmt.Errorf("%w: RLE entry %d has an empty appended name", ErrBadValue, i)
			}
			e.Name = reuseString(oldName, body[2:j])
			body = body[j+1:]
		}
	}
	return nil
}
