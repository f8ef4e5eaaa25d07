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
func IIDAddress(iid uint32, ip netip.Addr) Address { return InInstance(iid, IPAddress(ip)) }

// InInstance returns a wrapped in an instance-ID LCAF (RFC 8060 §4.1).
func InInstance(iid uint32, a Address) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: iid, Addrs: []Address{a}}}
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

// reset clears a for reuse, keeping the capacity of every slice it holds
// (and so the elements, with their own slices, left in that capacity).
func (a *Address) reset() {
	a.AFI, a.MAC = AFINone, [6]byte{}
	if a.IP.IsValid() {
		a.IP = netip.Addr{}
	}
	if a.Name != "" {
		a.Name = ""
	}
	a.LCAF.reset()
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
	// Keep the previous name so that re-parsing the same name into a reused
	// Address does not allocate a new string.
	oldName := a.Name
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
		a.Name = reuseString(oldName, b[:i])
		return 2 + i + 1, nil
	case AFILCAF:
		n, err := a.LCAF.parse(b, depth)
		return 2 + n, err
	}
	return 0, fmt.Errorf("%w: %d", ErrBadAFI, a.AFI)
}

// String formats a for logs and tables: "1.2.3.4", "[5]10.0.0.1",
// "[5](10.0.0.1,239.1.1.1)", "rle{0:192.0.2.1,128:192.0.2.2}" and so on
// (see LCAF.String).
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

// appendDepth appends a, counting depth for nested LCAFs.
func (a *Address) appendDepth(b []byte, depth int) ([]byte, error) {
	if a.AFI == AFILCAF {
		return a.LCAF.append(b, depth)
	}
	return a.Append(b)
}

// reuseString returns old when it equals b, else a new string of b: parsing
// the same text into a reused struct then allocates nothing.
func reuseString(old string, b []byte) string {
	if old == string(b) {
		return old
	}
	return string(b)
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

// Clone returns a deep copy of a that shares no memory with it, so that a
// parsed address can be kept after the struct it was parsed into is reused.
// An address that cannot be encoded is copied shallowly.
func (a *Address) Clone() Address {
	var buf [64]byte
	b, err := a.Append(buf[:0])
	if err == nil {
		var c Address
		if _, err = c.Parse(b); err == nil {
			return c
		}
	}
	return *a
}
