package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The MSFD TLV (LISP Mapping Service Function Discovery,
// draft-boucadair-lisp-function-discovery §3) is a TLV of the OSPF Router
// Information LSA (RFC 7770 §2.3): a 16-bit type, a 16-bit length that
// counts the value only, the value, and zero padding to a 4-byte boundary.
// The draft gives the fields (the function, Map-Resolver or Map-Server; its
// locators; its status; an unavailability timer and a reboot timer; its
// capabilities, bulk retrieval and subscription) but assigns no type and
// leaves the layout open, so rloc chooses this one, byte by byte
// (docs/discovery.md):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       Type (32768)            |           Length              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Function    |    Status     |         Capabilities          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Unavailability Timer (s)   |       Reboot Timer (s)        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       Control Port            | Locator Count |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       Locator AFI             |  Locator address (4 or 16)... |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ... one AFI + address per locator ...
//
// Length is 12 + the locators' bytes exactly; anything else is malformed.

// TLVTypeMSFD is the RI TLV type rloc uses for the MSFD TLV: the first of
// the RI TLV types RFC 7770 §7 reserves for experimental use (32768-32777);
// the draft asks IANA for a type that was never assigned.
const TLVTypeMSFD = 32768

// TLVTypeCapabilities is the RI LSA's Router Informational Capabilities
// TLV (RFC 7770 §2.4), skipped by the MSFD parser.
const TLVTypeCapabilities = 1

// msfdFixed is the value's fixed part before the locators.
const msfdFixed = 12

// MaxLocators bounds the locators of one MSFD TLV; a TLV with more is
// malformed.
const MaxLocators = 16

// Function is the mapping-service function an MSFD TLV advertises
// (draft-boucadair-lisp-function-discovery §3 "Mapping Service Type"): a
// bit set, so one TLV can advertise a node that is both.
type Function uint8

// Functions.
const (
	// FunctionMapResolver: the locators accept Map-Requests (in ECMs) from
	// ITRs (RFC 9301 §8.1).
	FunctionMapResolver Function = 0x01
	// FunctionMapServer: the locators accept Map-Registers from ETRs
	// (RFC 9301 §8.2).
	FunctionMapServer Function = 0x02
	functionMask               = FunctionMapResolver | FunctionMapServer
)

// String names the functions ("map-resolver", "map-server" or both).
func (f Function) String() string {
	switch f {
	case FunctionMapResolver:
		return "map-resolver"
	case FunctionMapServer:
		return "map-server"
	case FunctionMapResolver | FunctionMapServer:
		return "map-resolver+map-server"
	}
	return fmt.Sprintf("function-%#x", uint8(f))
}

// Status is the function's status (draft-boucadair-lisp-function-discovery
// §3 "Status").
type Status uint8

// Statuses.
const (
	// StatusEnabled: the function serves; xTRs may use it.
	StatusEnabled Status = 1
	// StatusDisabled: the function does not serve; xTRs stop using it.
	StatusDisabled Status = 2
)

// String names the status as configured.
func (s Status) String() string {
	switch s {
	case StatusEnabled:
		return "enabled"
	case StatusDisabled:
		return "disabled"
	}
	return fmt.Sprintf("status-%d", uint8(s))
}

// Capabilities are the optional primitives the function supports
// (draft-boucadair-lisp-function-discovery §3 "Capabilities").
type Capabilities uint16

// Capability bits.
const (
	// CapBulk: Map-Bulk-Request/Reply (draft-boucadair-lisp-bulk).
	CapBulk Capabilities = 0x0001
	// CapSubscribe: subscriptions to mapping changes (RFC 9437,
	// draft-boucadair-lisp-subscribe).
	CapSubscribe Capabilities = 0x0002
	capMask                   = CapBulk | CapSubscribe
)

// Names lists the capabilities by their configuration names.
func (c Capabilities) Names() []string {
	var out []string
	if c&CapBulk != 0 {
		out = append(out, "bulk")
	}
	if c&CapSubscribe != 0 {
		out = append(out, "subscribe")
	}
	return out
}

// MSFD is one decoded MSFD TLV.
type MSFD struct {
	// Function is what the locators serve.
	Function Function
	// Status says whether xTRs may use the function.
	Status Status
	// Capabilities are the optional primitives supported; unknown bits
	// are kept as received.
	Capabilities Capabilities
	// Unavailable, when not zero, is how long from the LSA's origination
	// until the function becomes unavailable (planned maintenance): xTRs
	// stop choosing it then (seconds on the wire, at most 65535).
	Unavailable time.Duration
	// Reboot, when not zero, is how long from the LSA's origination until
	// the function's node reboots: xTRs stop choosing it then, until a new
	// LSA says it is back (seconds on the wire, at most 65535).
	Reboot time.Duration
	// Port is the UDP control port of the locators; 0 on the wire means
	// 4342 (RFC 9301 §5.1). An rloc addition: the draft has no port.
	Port uint16
	// Locators are the addresses of the function.
	Locators []netip.Addr
}

// Errors of the MSFD parser.
var (
	ErrTruncated = errors.New("msfd: truncated TLV")
	ErrLength    = errors.New("msfd: length does not match the locators")
	ErrFunction  = errors.New("msfd: no known function bit")
	ErrStatus    = errors.New("msfd: unknown status")
	ErrLocators  = errors.New("msfd: locator count out of range")
	ErrAFI       = errors.New("msfd: unknown locator AFI")
	ErrAddress   = errors.New("msfd: locator address not usable")
)

// AFIs of the locators (IANA Address Family Numbers, as LISP uses them,
// RFC 9301 §5).
const (
	afiIPv4 = 1
	afiIPv6 = 2
)

// Len returns the value's length (the TLV's Length field).
func (m *MSFD) Len() int {
	n := msfdFixed
	for _, l := range m.Locators {
		n += 2 + len(l.AsSlice())
	}
	return n
}

// Append appends the whole TLV (type, length, value, padding) to b. It
// returns b unchanged with an error when m cannot be encoded.
func (m *MSFD) Append(b []byte) ([]byte, error) {
	switch {
	case m.Function&functionMask == 0 || m.Function&^functionMask != 0:
		return b, ErrFunction
	case m.Status != StatusEnabled && m.Status != StatusDisabled:
		return b, ErrStatus
	case len(m.Locators) == 0 || len(m.Locators) > MaxLocators:
		return b, ErrLocators
	case m.Unavailable < 0 || m.Unavailable > 0xffff*time.Second || m.Reboot < 0 || m.Reboot > 0xffff*time.Second:
		return b, fmt.Errorf("msfd: timer beyond 65535 s")
	}
	for _, l := range m.Locators {
		if !usableLocator(l) {
			return b, fmt.Errorf("%w: %v", ErrAddress, l)
		}
	}
	start := len(b)
	n := m.Len()
	b = binary.BigEndian.AppendUint16(b, TLVTypeMSFD)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, uint8(m.Function), uint8(m.Status))
	b = binary.BigEndian.AppendUint16(b, uint16(m.Capabilities))
	b = binary.BigEndian.AppendUint16(b, uint16(m.Unavailable/time.Second))
	b = binary.BigEndian.AppendUint16(b, uint16(m.Reboot/time.Second))
	b = binary.BigEndian.AppendUint16(b, m.Port)
	b = append(b, uint8(len(m.Locators)), 0)
	for _, l := range m.Locators {
		if l.Is4() {
			b = binary.BigEndian.AppendUint16(b, afiIPv4)
		} else {
			b = binary.BigEndian.AppendUint16(b, afiIPv6)
		}
		b = append(b, l.AsSlice()...)
	}
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	return b, nil
}

// usableLocator: a unicast address a Map-Request or Map-Register can go to.
func usableLocator(a netip.Addr) bool {
	return a.IsValid() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast() && a.Zone() == ""
}

// parseValue decodes the value of an MSFD TLV into m, reusing its locator
// slice.
func (m *MSFD) parseValue(v []byte) error {
	if len(v) < msfdFixed {
		return ErrTruncated
	}
	m.Function = Function(v[0])
	m.Status = Status(v[1])
	m.Capabilities = Capabilities(binary.BigEndian.Uint16(v[2:]))
	m.Unavailable = time.Duration(binary.BigEndian.Uint16(v[4:])) * time.Second
	m.Reboot = time.Duration(binary.BigEndian.Uint16(v[6:])) * time.Second
	m.Port = binary.BigEndian.Uint16(v[8:])
	count := int(v[10])
	m.Locators = m.Locators[:0]
	switch {
	case m.Function&functionMask == 0:
		return ErrFunction
	case m.Status != StatusEnabled && m.Status != StatusDisabled:
		return ErrStatus
	case count == 0 || count > MaxLocators:
		return ErrLocators
	}
	rest := v[msfdFixed:]
	for range count {
		if len(rest) < 2 {
			return ErrLength
		}
		var n int
		switch binary.BigEndian.Uint16(rest) {
		case afiIPv4:
			n = 4
		case afiIPv6:
			n = 16
		default:
			return ErrAFI
		}
		if len(rest) < 2+n {
			return ErrLength
		}
		a, _ := netip.AddrFromSlice(rest[2 : 2+n])
		if !usableLocator(a) {
			return fmt.Errorf("%w: %v", ErrAddress, a)
		}
		m.Locators = append(m.Locators, a)
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return ErrLength
	}
	return nil
}

// ParseRIBody walks the TLVs of a Router Information LSA's body (RFC 7770
// §2.3) and calls found for each MSFD TLV that decodes, and bad for each
// that does not (with the reason); other TLVs are skipped. It returns an
// error, after the TLVs before it, when the TLV framing itself is broken
// (a TLV running past the body). The MSFD passed to found is reused for
// the next TLV: copy what is kept.
func ParseRIBody(body []byte, found func(*MSFD), bad func(error)) error {
	var m MSFD
	for len(body) > 0 {
		if len(body) < 4 {
			return fmt.Errorf("%w: %d bytes of TLV header", ErrTruncated, len(body))
		}
		t := binary.BigEndian.Uint16(body)
		n := int(binary.BigEndian.Uint16(body[2:]))
		padded := (n + 3) &^ 3
		if 4+n > len(body) {
			return fmt.Errorf("%w: TLV %d of length %d in %d bytes", ErrTruncated, t, n, len(body)-4)
		}
		v := body[4 : 4+n]
		if padded+4 > len(body) {
			body = nil // the last TLV's padding may be missing
		} else {
			body = body[4+padded:]
		}
		if t != TLVTypeMSFD {
			continue
		}
		if err := m.parseValue(v); err != nil {
			bad(err)
			continue
		}
		found(&m)
	}
	return nil
}

// Clone returns a copy of m that shares nothing with it.
func (m *MSFD) Clone() MSFD {
	c := *m
	c.Locators = append([]netip.Addr(nil), m.Locators...)
	return c
}
