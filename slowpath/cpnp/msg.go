// Package cpnp is the negotiation of mapping-system interconnect
// agreements with the Connectivity Provisioning Negotiation Protocol (CPNP,
// RFC 8921): a customer mapping system sends a quotation order (which EID
// prefixes, which primitives — subscribe, bulk retrieval, direct
// invocation — what rate, for how long), the provider offers all or part of
// it or declines, the customer accepts or declines the offer, and both keep
// the agreement under the customer's and the provider's identifiers until
// one side withdraws it or an update replaces its terms.
//
// RFC 8921 defines the messages and their meaning but leaves the
// negotiated service (its "Connectivity Provisioning Profile") and the
// encoding to the application; rloc's binary encoding is documented byte
// by byte in docs/cpnp.md and in this file. The package is pure: Message
// encodes and decodes, Negotiator runs the state machines of both sides and
// returns the messages to send; transport and timers belong to the caller.
package cpnp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Version is the only version of rloc's CPNP encoding.
const Version = 1

// Type is a CPNP message type (RFC 8921's message list).
type Type uint8

// Message types.
const (
	// Quotation: the customer's order (or, with a provider agreement ID,
	// an update of an agreed order).
	Quotation Type = 1
	// Processing: the provider needs time before its offer.
	Processing Type = 2
	// Offer: the provider's terms, all or part of the order.
	Offer Type = 3
	// Accept: the customer takes the offer.
	Accept Type = 4
	// Decline: the customer refuses the offer, or the provider the order.
	Decline Type = 5
	// Ack: the provider confirms an accepted offer (the agreement holds),
	// or either side confirms a withdrawal.
	Ack Type = 6
	// Cancel: the customer abandons an order before the offer.
	Cancel Type = 7
	// Withdraw: either side ends an agreement.
	Withdraw Type = 8
	// Update: the customer asks for new terms of an agreement.
	Update Type = 9
	// Fail: the message could not be processed (with a reason).
	Fail    Type = 10
	maxType      = Fail
)

// String names a message type as RFC 8921 spells it.
func (t Type) String() string {
	names := [...]string{1: "QUOTATION", "PROCESSING", "OFFER", "ACCEPT", "DECLINE", "ACK", "CANCEL", "WITHDRAW", "UPDATE", "FAIL"}
	if t >= 1 && t <= maxType {
		return names[t]
	}
	return fmt.Sprintf("TYPE-%d", uint8(t))
}

// Primitives are the interconnect primitives an order asks for and an
// offer grants (draft-boucadair-lisp-subscribe, draft-boucadair-lisp-bulk,
// and plain Map-Requests: direct invocation).
type Primitives uint16

// Primitive bits.
const (
	PrimSubscribe Primitives = 0x0001
	PrimBulk      Primitives = 0x0002
	PrimDirect    Primitives = 0x0004
	primMask                 = PrimSubscribe | PrimBulk | PrimDirect
)

// Prefix is an instance-ID and EID prefix of an order or offer.
type Prefix struct {
	IID    uint32
	Prefix netip.Prefix
}

// Reason codes of Decline, Fail and Withdraw.
const (
	ReasonNone          uint8 = 0
	ReasonPolicy        uint8 = 1 // the policy refuses the peer or everything asked
	ReasonUnknownID     uint8 = 2 // an agreement identifier nobody knows
	ReasonOutOfSequence uint8 = 3 // not expected in the agreement's state
	ReasonMalformed     uint8 = 4
	ReasonExpired       uint8 = 5 // the agreement's duration ran out
	ReasonOperator      uint8 = 6 // an operator's decision
)

// Message is one decoded CPNP message. Zero-valued optional fields are not
// encoded.
type Message struct {
	Type Type
	// Seq is the sender's sequence number, one more for each new message
	// of the transaction (a retransmission repeats it).
	Seq uint32
	// Transaction identifies the negotiation (the order and everything
	// that answers it), chosen by the customer.
	Transaction uint32
	// CustomerID and ProviderID are the agreement identifiers each side
	// assigns (RFC 8921: customer and provider order identifiers); the
	// provider's is empty until its first offer.
	CustomerID, ProviderID string
	// Prefixes are what is asked for (Quotation, Update) or granted
	// (Offer).
	Prefixes []Prefix
	// Primitives asked for or granted.
	Primitives Primitives
	// Rate is the Map-Requests per second asked for or granted (0: none
	// stated).
	Rate uint32
	// Duration is how long the agreement lasts (0: until withdrawn);
	// seconds on the wire.
	Duration time.Duration
	// Reason explains a Decline, Fail or Withdraw.
	Reason uint8
	// Text is a human-readable explanation.
	Text string
	// KeyRef names the key material the interconnect uses (an identifier
	// both sides know from their configuration: keys never travel in
	// CPNP).
	KeyRef string
	// Identity is the sender's Ed25519 public key (zero: absent); the
	// transport (role.go) signs every message with it and the receiver
	// trusts it only when it is on its trust list.
	Identity [32]byte
	// Ephemeral is the sender's X25519 public key for the agreement key's
	// exchange (zero: absent), in Quotation, Update and Offer.
	Ephemeral [32]byte
}

// Object types of the encoding.
const (
	objCustomerID = 1
	objProviderID = 2
	objPrefix     = 3
	objPrimitives = 4
	objRate       = 5
	objDuration   = 6
	objReason     = 7
	objText       = 8
	objKeyRef     = 9
	objIdentity   = 10
	objEphemeral  = 11
)

// Bounds of a message.
const (
	hdrLen      = 12
	maxIDLen    = 64
	MaxPrefixes = 256
	MaxLen      = 8192
)

// Errors of the decoder.
var (
	ErrTruncated = errors.New("cpnp: truncated message")
	ErrVersion   = errors.New("cpnp: unknown version")
	ErrType      = errors.New("cpnp: unknown message type")
	ErrObject    = errors.New("cpnp: malformed object")
	ErrTooMany   = errors.New("cpnp: too many prefixes")
)

// Append encodes m after b:
//
//	 0                   1                   2                   3
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Version (1)  |     Type      |        Length (whole message) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Sequence Number                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Transaction ID                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Object Type  | Object Length |  Object value ...             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// objects (one byte type, one byte length, no padding): 1 customer ID, 2
// provider ID (1..64 bytes of text), 3 prefix (IID 4 bytes, AFI 2 bytes,
// prefix length 1 byte, the address's 4 or 16 bytes; repeated), 4
// primitives (2 bytes), 5 rate (4 bytes), 6 duration (4 bytes, seconds),
// 7 reason (1 byte), 8 text (0..255 bytes), 9 key reference (1..64 bytes),
// 10 identity (the sender's Ed25519 public key, 32 bytes), 11 ephemeral
// (the sender's X25519 public key, 32 bytes).
// It returns b unchanged with an error when m cannot be encoded.
func (m *Message) Append(b []byte) ([]byte, error) {
	switch {
	case m.Type < 1 || m.Type > maxType:
		return b, ErrType
	case len(m.CustomerID) > maxIDLen || len(m.ProviderID) > maxIDLen || len(m.KeyRef) > maxIDLen:
		return b, fmt.Errorf("cpnp: identifier longer than %d bytes", maxIDLen)
	case len(m.Text) > 255:
		return b, fmt.Errorf("cpnp: text longer than 255 bytes")
	case len(m.Prefixes) > MaxPrefixes:
		return b, ErrTooMany
	case m.Duration < 0 || m.Duration > 0xffffffff*time.Second:
		return b, fmt.Errorf("cpnp: duration %v out of range", m.Duration)
	}
	start := len(b)
	b = append(b, Version, uint8(m.Type), 0, 0)
	b = binary.BigEndian.AppendUint32(b, m.Seq)
	b = binary.BigEndian.AppendUint32(b, m.Transaction)
	str := func(t uint8, s string) {
		if s != "" {
			b = append(b, t, uint8(len(s)))
			b = append(b, s...)
		}
	}
	str(objCustomerID, m.CustomerID)
	str(objProviderID, m.ProviderID)
	for _, p := range m.Prefixes {
		a := p.Prefix.Addr()
		if !p.Prefix.IsValid() || a.Is4In6() || a.Zone() != "" {
			return b[:start], fmt.Errorf("cpnp: prefix %v", p.Prefix)
		}
		afi := uint16(1)
		if a.Is6() {
			afi = 2
		}
		b = append(b, objPrefix, uint8(7+a.BitLen()/8))
		b = binary.BigEndian.AppendUint32(b, p.IID)
		b = binary.BigEndian.AppendUint16(b, afi)
		b = append(b, uint8(p.Prefix.Bits()))
		b = append(b, a.AsSlice()...)
	}
	if m.Primitives != 0 {
		b = append(b, objPrimitives, 2)
		b = binary.BigEndian.AppendUint16(b, uint16(m.Primitives))
	}
	if m.Rate != 0 {
		b = append(b, objRate, 4)
		b = binary.BigEndian.AppendUint32(b, m.Rate)
	}
	if m.Duration != 0 {
		b = append(b, objDuration, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(m.Duration/time.Second))
	}
	if m.Reason != 0 {
		b = append(b, objReason, 1, m.Reason)
	}
	str(objText, m.Text)
	str(objKeyRef, m.KeyRef)
	for _, k := range []struct {
		t uint8
		v *[32]byte
	}{{objIdentity, &m.Identity}, {objEphemeral, &m.Ephemeral}} {
		if *k.v != ([32]byte{}) {
			b = append(b, k.t, 32)
			b = append(b, k.v[:]...)
		}
	}
	n := len(b) - start
	if n > MaxLen {
		return b[:start], fmt.Errorf("cpnp: message of %d bytes exceeds %d", n, MaxLen)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

// Parse decodes b (one whole message) into m, reusing its prefix slice.
// Unknown object types are skipped; a malformed one fails the message.
func (m *Message) Parse(b []byte) error {
	pfx := m.Prefixes[:0]
	*m = Message{Prefixes: pfx}
	if len(b) < hdrLen {
		return ErrTruncated
	}
	if b[0] != Version {
		return fmt.Errorf("%w %d", ErrVersion, b[0])
	}
	m.Type = Type(b[1])
	if m.Type < 1 || m.Type > maxType {
		return fmt.Errorf("%w %d", ErrType, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < hdrLen || n > len(b) {
		return fmt.Errorf("%w: length %d of %d bytes", ErrTruncated, n, len(b))
	}
	m.Seq = binary.BigEndian.Uint32(b[4:])
	m.Transaction = binary.BigEndian.Uint32(b[8:])
	rest := b[hdrLen:n]
	for len(rest) > 0 {
		if len(rest) < 2 || int(rest[1]) > len(rest)-2 {
			return fmt.Errorf("%w: object header", ErrTruncated)
		}
		t, v := rest[0], rest[2:2+int(rest[1])]
		rest = rest[2+len(v):]
		bad := func(what string) error { return fmt.Errorf("%w: %s (type %d, %d bytes)", ErrObject, what, t, len(v)) }
		switch t {
		case objCustomerID, objProviderID, objKeyRef:
			if len(v) == 0 || len(v) > maxIDLen {
				return bad("identifier")
			}
			s := string(v)
			switch t {
			case objCustomerID:
				m.CustomerID = s
			case objProviderID:
				m.ProviderID = s
			default:
				m.KeyRef = s
			}
		case objPrefix:
			if len(v) < 7 {
				return bad("prefix")
			}
			if len(m.Prefixes) == MaxPrefixes {
				return ErrTooMany
			}
			iid := binary.BigEndian.Uint32(v)
			afi, bits, addr := binary.BigEndian.Uint16(v[4:]), int(v[6]), v[7:]
			if !(afi == 1 && len(addr) == 4 || afi == 2 && len(addr) == 16) {
				return bad("prefix address family")
			}
			a, _ := netip.AddrFromSlice(addr)
			p, err := a.Prefix(bits)
			if err != nil || bits > a.BitLen() || p.Addr() != a {
				return bad("prefix length or host bits")
			}
			m.Prefixes = append(m.Prefixes, Prefix{IID: iid, Prefix: p})
		case objPrimitives:
			if len(v) != 2 {
				return bad("primitives")
			}
			m.Primitives = Primitives(binary.BigEndian.Uint16(v))
		case objRate, objDuration:
			if len(v) != 4 {
				return bad("rate or duration")
			}
			x := binary.BigEndian.Uint32(v)
			if t == objRate {
				m.Rate = x
			} else {
				m.Duration = time.Duration(x) * time.Second
			}
		case objReason:
			if len(v) != 1 {
				return bad("reason")
			}
			m.Reason = v[0]
		case objText:
			m.Text = string(v)
		case objIdentity, objEphemeral:
			if len(v) != 32 {
				return bad("public key")
			}
			if t == objIdentity {
				m.Identity = [32]byte(v)
			} else {
				m.Ephemeral = [32]byte(v)
			}
		}
	}
	return nil
}
