package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Address is one address as LISP control messages carry it: an AFI followed by
// the address (RFC 9301 §5.1), or an LCAF (RFC 8060) that may nest further
// addresses. An Address is a plain value; Parse reuses the slices it holds so
// that a struct kept by the caller parses without allocating.
type Address struct {
	// AFI is the address family on the wire. AFILCAF means LCAF holds the address.
	AFI AFI
	// IP is the address for AFIIPv4 and AFIIPv6.
	IP netip.Addr
	// MAC is the address for AFIMAC and AFIMAC48 (RFC 8060 §4.1).
	MAC [6]byte
	// Name is the distinguished name for AFIDistName, without its NUL terminator
	// (draft-ietf-lisp-name-encoding §3).
	Name string
	// LCAF is the canonical address when AFI is AFILCAF (RFC 8060 §3).
	LCAF LCAF
}

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
	// instance-ID type it is the IID mask length (RFC 8060 §4.1).
	Rsvd2 uint8
	// IID is the 32-bit instance-ID of types 2 and 9 (RFC 8060 §4.1, §4.5).
	IID uint32
	// ASN is the AS number of type 3 (RFC 8060 §4.1).
	ASN uint32
	// SrcMaskLen and DstMaskLen are the source and group/destination mask
	// lengths of types 9 and 12 (RFC 8060 §4.5, §4.8).
	SrcMaskLen, DstMaskLen uint8
	// Addrs holds the nested addresses: the list of type 1; the single
	// address of types 2, 3, 5 and 14 (when present); source then group of
	// type 9; source then destination of type 12; key then value of type 15;
	// for type 7 the Global ETR RLOC, MS RLOC, Private ETR RLOC, then RTR RLOCs
	// (RFC 8060 §4.4); for type 11 the address after the key.
	Addrs []Address
	// Raw is the body of an unknown LCAF type, re-emitted unchanged; for type
	// 14 the JSON text (RFC 8060 §4.10.1).
	Raw []byte
}

// IPAddress returns the plain address of ip (AFI 1 or 2).
func IPAddress(ip netip.Addr) Address {
	if ip.Is4() {
		return Address{AFI: AFIIPv4, IP: ip}
	}
	if ip.Is6() {
		return Address{AFI: AFIIPv6, IP: ip}
	}
	return Address{}
}

// IIDAddress returns ip wrapped in an instance-ID LCAF (RFC 8060 §4.1).
func IIDAddress(iid uint32, ip netip.Addr) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: iid, Addrs: []Address{IPAddress(ip)}}}
}

// MACAddress returns a 48-bit MAC address (AFI 16389).
func MACAddress(mac [6]byte) Address { return Address{AFI: AFIMAC48, MAC: mac} }

// NameAddress returns a distinguished-name address (AFI 17).
func NameAddress(name string) Address { return Address{AFI: AFIDistName, Name: name} }

// IsZero reports whether a is the empty address (AFI 0).
func (a *Address) IsZero() bool { return a.AFI == AFINone }

// Unwrap returns the instance-ID and the innermost address of a, removing one
// instance-ID LCAF if present. ok is false when a is an instance-ID LCAF
// without a nested address.
func (a *Address) Unwrap() (iid uint32, inner *Address, ok bool) {
	if a.AFI == AFILCAF && a.LCAF.Type == LCAFInstanceID {
		if len(a.LCAF.Addrs) != 1 {
			return 0, nil, false
		}
		return a.LCAF.IID, &a.LCAF.Addrs[0], true
	}
	return 0, a, true
}

// Prefix returns the instance-ID and IP prefix of a with the given mask
// length, as an EID prefix of a mapping record. ok is false when a is not an
// IP address (possibly inside an instance-ID LCAF) or masklen is too long.
func (a *Address) Prefix(masklen uint8) (iid uint32, p netip.Prefix, ok bool) {
	iid, in, ok := a.Unwrap()
	if !ok || (in.AFI != AFIIPv4 && in.AFI != AFIIPv6) {
		return 0, netip.Prefix{}, false
	}
	p, err := in.IP.Prefix(int(masklen))
	if err != nil {
		return 0, netip.Prefix{}, false
	}
	return iid, p, true
}

// reset clears a for reuse, keeping the capacity of its slices.
func (a *Address) reset() {
	addrs, raw := a.LCAF.Addrs[:0], a.LCAF.Raw[:0]
	*a = Address{}
	a.LCAF.Addrs, a.LCAF.Raw = addrs, raw
}

// lcafHeaderLen is the length of the LCAF header after its AFI (RFC 8060 §3).
const lcafHeaderLen = 6

// maxAddressDepth bounds LCAF nesting so hostile input cannot recurse deeply.
const maxAddressDepth = 8

// Len returns the encoded length of a, AFI included.
func (a *Address) Len() int {
	switch a.AFI {
	case AFINone:
		return 2
	case AFIIPv4:
		return 2 + 4
	case AFIIPv6:
		return 2 + 16
	case AFIMAC, AFIMAC48:
		return 2 + 6
	case AFIDistName:
		return 2 + len(a.Name) + 1
	case AFILCAF:
		return 2 + lcafHeaderLen + a.LCAF.bodyLen()
	}
	return 2
}

// Append appends the encoding of a (AFI and address) to b.
func (a *Address) Append(b []byte) ([]byte, error) {
	switch a.AFI {
	case AFINone:
		return binary.BigEndian.AppendUint16(b, 0), nil
	case AFIIPv4:
		if !a.IP.Is4() {
			return b, fmt.Errorf("%w: AFI 1 with address %v", ErrBadAFI, a.IP)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(AFIIPv4))
		v := a.IP.As4()
		return append(b, v[:]...), nil
	case AFIIPv6:
		if !a.IP.Is6() {
			return b, fmt.Errorf("%w: AFI 2 with address %v", ErrBadAFI, a.IP)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(AFIIPv6))
		v := a.IP.As16()
		return append(b, v[:]...), nil
	case AFIMAC, AFIMAC48:
		b = binary.BigEndian.AppendUint16(b, uint16(a.AFI))
		return append(b, a.MAC[:]...), nil
	case AFIDistName:
		if strings.IndexByte(a.Name, 0) >= 0 {
			return b, fmt.Errorf("%w: distinguished name contains NUL", ErrBadValue)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(AFIDistName))
		b = append(b, a.Name...)
		return append(b, 0), nil
	case AFILCAF:
		return a.LCAF.append(b, 0)
	}
	return b, fmt.Errorf("%w: cannot encode AFI %d", ErrBadAFI, a.AFI)
}

// Parse reads one address from the start of b into a and returns the number
// of bytes it used.
func (a *Address) Parse(b []byte) (int, error) { return a.parse(b, 0) }

func (a *Address) parse(b []byte, depth int) (int, error) {
	a.reset()
	if len(b) < 2 {
		return 0, fmt.Errorf("%w: address AFI", ErrTruncated)
	}
	a.AFI = AFI(binary.BigEndian.Uint16(b))
	b = b[2:]
	switch a.AFI {
	case AFINone:
		return 2, nil
	case AFIIPv4:
		if len(b) < 4 {
			return 0, fmt.Errorf("%w: IPv4 address", ErrTruncated)
		}
		a.IP = netip.AddrFrom4([4]byte(b[:4]))
		return 6, nil
	case AFIIPv6:
		if len(b) < 16 {
			return 0, fmt.Errorf("%w: IPv6 address", ErrTruncated)
		}
		a.IP = netip.AddrFrom16([16]byte(b[:16]))
		return 18, nil
	case AFIMAC, AFIMAC48:
		if len(b) < 6 {
			return 0, fmt.Errorf("%w: MAC address", ErrTruncated)
		}
		a.MAC = [6]byte(b[:6])
		return 8, nil
	case AFIDistName:
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i == len(b) {
			return 0, fmt.Errorf("%w: distinguished name without NUL", ErrTruncated)
		}
		if a.Name != string(b[:i]) {
			a.Name = string(b[:i])
		}
		return 2 + i + 1, nil
	case AFILCAF:
		n, err := a.LCAF.parse(b, depth)
		return 2 + n, err
	}
	return 0, fmt.Errorf("%w: %d", ErrBadAFI, a.AFI)
}

// String formats a for logs and tables: "1.2.3.4", "[5]10.0.0.1",
// "(S,G)" forms and so on.
func (a Address) String() string {
	switch a.AFI {
	case AFINone:
		return "no-address"
	case AFIIPv4, AFIIPv6:
		return a.IP.String()
	case AFIMAC, AFIMAC48:
		m := a.MAC
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
	case AFIDistName:
		return "'" + a.Name + "'"
	case AFILCAF:
		return a.LCAF.String()
	}
	return fmt.Sprintf("afi-%d", a.AFI)
}

// bodyLen returns the LCAF length field: the bytes after the Length field.
func (l *LCAF) bodyLen() int {
	switch l.Type {
	case LCAFInstanceID:
		n := 4
		for i := range l.Addrs {
			n += l.Addrs[i].Len()
		}
		return n
	}
	return len(l.Raw)
}

// append appends the LCAF (its AFI included) to b.
func (l *LCAF) append(b []byte, depth int) ([]byte, error) {
	if depth > maxAddressDepth {
		return b, fmt.Errorf("%w: LCAF nested too deeply", ErrTooLarge)
	}
	n := l.bodyLen()
	if n > 0xffff {
		return b, fmt.Errorf("%w: LCAF type %d length %d", ErrTooLarge, l.Type, n)
	}
	rsvd2 := l.Rsvd2
	b = binary.BigEndian.AppendUint16(b, uint16(AFILCAF))
	b = append(b, l.Rsvd1, l.Flags, byte(l.Type), rsvd2)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	var err error
	switch l.Type {
	case LCAFInstanceID:
		if len(l.Addrs) > 1 {
			return b, fmt.Errorf("%w: instance-ID LCAF with %d addresses", ErrBadValue, len(l.Addrs))
		}
		b = binary.BigEndian.AppendUint32(b, l.IID)
		for i := range l.Addrs {
			if b, err = l.Addrs[i].appendDepth(b, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return append(b, l.Raw...), nil
}

func (a *Address) appendDepth(b []byte, depth int) ([]byte, error) {
	if a.AFI == AFILCAF {
		return a.LCAF.append(b, depth)
	}
	return a.Append(b)
}

// parse reads an LCAF whose AFI has been consumed and returns the bytes used.
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
	switch l.Type {
	case LCAFInstanceID:
		if len(body) < 4 {
			return 0, fmt.Errorf("%w: instance-ID LCAF", ErrBadLength)
		}
		l.IID = binary.BigEndian.Uint32(body)
		if len(body) > 4 {
			if err := l.parseAddrs(body[4:], depth, 1); err != nil {
				return 0, err
			}
		}
	default:
		l.Raw = append(l.Raw[:0], body...)
	}
	return lcafHeaderLen + n, nil
}

// parseAddrs parses body as a sequence of addresses into l.Addrs, exactly
// filling body; max > 0 bounds how many there may be.
func (l *LCAF) parseAddrs(body []byte, depth, max int) error {
	for len(body) > 0 {
		if max > 0 && len(l.Addrs) == max {
			return fmt.Errorf("%w: LCAF type %d has trailing bytes", ErrBadLength, l.Type)
		}
		l.Addrs = growOne(l.Addrs)
		n, err := l.Addrs[len(l.Addrs)-1].parse(body, depth+1)
		if err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// String formats the LCAF for logs.
func (l LCAF) String() string {
	switch l.Type {
	case LCAFInstanceID:
		if len(l.Addrs) == 1 {
			return fmt.Sprintf("[%d]%s", l.IID, l.Addrs[0])
		}
		return fmt.Sprintf("[%d]", l.IID)
	}
	return fmt.Sprintf("lcaf-%d(%d bytes)", l.Type, len(l.Raw))
}

// growOne extends s by one element, reusing an element left in its capacity
// (and so that element's own slices) when there is one.
func growOne[T any](s []T) []T {
	if len(s) < cap(s) {
		return s[:len(s)+1]
	}
	var zero T
	return append(s, zero)
}

// growTo returns s with length n, reusing elements within its capacity.
func growTo[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}
