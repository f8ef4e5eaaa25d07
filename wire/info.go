package wire

import (
	"encoding/binary"
	"fmt"
)

// Info is the Info-Request / Info-Reply message of LISP NAT traversal
// (type 7, draft-ietf-lisp-nat-traversal §5): an xTR behind a NAT sends an
// Info-Request to its Map-Server's control port, and the Map-Server answers
// with an Info-Reply that tells the xTR its translated (global) RLOC and
// port and the RTRs it may use.
//
//	Type=7 | R | 27 reserved bits
//	Nonce (8 bytes)
//	Key ID | Algorithm ID | Authentication Data Length | Authentication Data
//	TTL (4 bytes)
//	Reserved | EID mask-len | EID-Prefix-AFI | EID-Prefix
//	AFI 0 (request) or the NAT-traversal LCAF (reply)
//
// The authentication field is the one of Map-Register (RFC 9301 §5.6); see
// SignInfo and VerifyInfo.
type Info struct {
	// Reply is the R bit: set in an Info-Reply, clear in an Info-Request
	// (draft-ietf-lisp-nat-traversal §5).
	Reply bool
	// Nonce is chosen by the requester and echoed in the reply
	// (draft-ietf-lisp-nat-traversal §5).
	Nonce Nonce
	// Auth is the authentication field, computed with the key shared with
	// the Map-Server (draft-ietf-lisp-nat-traversal §5, RFC 9301 §5.6).
	Auth Auth
	// TTL is how long, in minutes, the requester may keep the reply's RTR
	// information (draft-ietf-lisp-nat-traversal §5); 0 in requests.
	TTL uint32
	// EID is the EID prefix the requester serves (draft-ietf-lisp-nat-traversal §5).
	EID EIDRecord
	// NAT is what follows the EID prefix: for an Info-Reply the
	// NAT-traversal LCAF (type 7: MS and ETR UDP ports, global ETR RLOC, MS
	// RLOC, private ETR RLOC, RTR RLOCs; RFC 8060 §4.4); for an Info-Request
	// the empty address (AFI 0). Parse keeps whatever address a request
	// carries, but requires a reply to carry an LCAF of type 7.
	NAT Address
}

// infoAuthOffset is where the authentication field starts.
const infoAuthOffset = 12

const infoFlagR = 0x08 // R bit in the first byte (draft-ietf-lisp-nat-traversal §5)

// Len returns the encoded length of the message.
func (m *Info) Len() int {
	return infoAuthOffset + m.Auth.Len() + 4 + m.EID.Len() + m.NAT.Len()
}

// Append appends the message to b with the authentication data zeroed;
// SignInfo then fills it in.
func (m *Info) Append(b []byte) ([]byte, error) {
	if err := m.checkNAT(); err != nil {
		return b, err
	}
	f := byte(TypeInfo) << 4
	if m.Reply {
		f |= infoFlagR
	}
	b = append(b, f, 0, 0, 0)
	b = append(b, m.Nonce[:]...)
	var err error
	if b, err = m.Auth.append(b); err != nil {
		return b, fmt.Errorf("Info: %w", err)
	}
	b = binary.BigEndian.AppendUint32(b, m.TTL)
	if b, err = m.EID.Append(b); err != nil {
		return b, fmt.Errorf("Info EID: %w", err)
	}
	if b, err = m.NAT.Append(b); err != nil {
		return b, fmt.Errorf("Info NAT-traversal address: %w", err)
	}
	return b, nil
}

func (m *Info) checkNAT() error {
	if m.Reply && (m.NAT.AFI != AFILCAF || m.NAT.LCAF.Type != LCAFNATT) {
		return fmt.Errorf("%w: Info-Reply without a NAT-traversal LCAF (AFI %d)", ErrBadValue, m.NAT.AFI)
	}
	return nil
}

// Parse reads a whole Info-Request or Info-Reply from b into m, reusing m's
// slices. Bytes after the NAT-traversal address are an error (ErrBadLength).
func (m *Info) Parse(b []byte) error {
	if len(b) < infoAuthOffset {
		return fmt.Errorf("%w: Info header", ErrTruncated)
	}
	if t := MessageType(b[0] >> 4); t != TypeInfo {
		return fmt.Errorf("%w: %v, want Info", ErrBadType, t)
	}
	m.Reply = b[0]&infoFlagR != 0
	m.Nonce = Nonce(b[4:12])
	off := infoAuthOffset
	n, err := m.Auth.parse(b[off:])
	if err != nil {
		return fmt.Errorf("Info: %w", err)
	}
	if err := checkParsedAuth(&m.Auth); err != nil {
		return fmt.Errorf("Info: %w", err)
	}
	off += n
	if len(b)-off < 4 {
		return fmt.Errorf("%w: Info TTL", ErrTruncated)
	}
	m.TTL = binary.BigEndian.Uint32(b[off:])
	off += 4
	if n, err = m.EID.Parse(b[off:]); err != nil {
		return fmt.Errorf("Info: %w", err)
	}
	off += n
	if n, err = m.NAT.Parse(b[off:]); err != nil {
		return fmt.Errorf("Info NAT-traversal address: %w", err)
	}
	off += n
	if err := m.checkNAT(); err != nil {
		return err
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the Info message", ErrBadLength, len(b)-off)
	}
	return nil
}

// SignInfo computes the authentication data of the encoded Info message msg
// (as written by Info.Append) with key, using the algorithm and data length
// its authentication field announces, over the whole message with the data
// zeroed (RFC 9301 §5.6, draft-ietf-lisp-nat-traversal §5).
func SignInfo(msg, key []byte) error {
	off, n, alg, err := infoAuthField(msg)
	if err != nil {
		return err
	}
	return SignAuth(msg, off, n, alg, key)
}

// VerifyInfo checks the authentication data of the encoded Info message msg
// against key. A message with algorithm 0 (no authentication) fails with
// ErrAuth.
func VerifyInfo(msg, key []byte) error {
	off, n, alg, err := infoAuthField(msg)
	if err != nil {
		return err
	}
	return VerifyAuth(msg, off, n, alg, key)
}

func infoAuthField(msg []byte) (off, n int, alg AuthAlg, err error) {
	if len(msg) == 0 || MessageType(msg[0]>>4) != TypeInfo {
		return 0, 0, 0, fmt.Errorf("%w: not an Info message", ErrBadType)
	}
	return locateAuthData(msg, infoAuthOffset)
}

// locateAuthData locates the authentication data of the Auth field (RFC 9301
// §5.6) that starts at msg[at:].
func locateAuthData(msg []byte, at int) (off, n int, alg AuthAlg, err error) {
	if len(msg) < at+authFixedLen {
		return 0, 0, 0, fmt.Errorf("%w: authentication field", ErrTruncated)
	}
	alg = AuthAlg(msg[at+1])
	n = int(binary.BigEndian.Uint16(msg[at+2:]))
	off = at + authFixedLen
	if len(msg) < off+n {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes of authentication data", ErrTruncated, n)
	}
	return off, n, alg, nil
}

// checkParsedAuth refuses an authentication field that Append could not
// write back: an unknown algorithm, or a data length that is neither the
// truncated nor the full HMAC length of its algorithm (RFC 9301 §5.6).
func checkParsedAuth(a *Auth) error {
	if !validAuthLen(a.Alg, len(a.Data)) {
		return fmt.Errorf("%w: %d bytes of authentication data for %v", ErrBadValue, len(a.Data), a.Alg)
	}
	return nil
}
