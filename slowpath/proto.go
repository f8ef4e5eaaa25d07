package slowpath

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Protocol helpers every role uses.

// AuthDataOff is where the authentication data starts in a Map-Register,
// Map-Notify or Map-Notify-Ack: first word, nonce, Key ID, Algorithm ID,
// length (RFC 9301 §5.6, §5.7).
const AuthDataOff = 4 + 8 + 4

// NewNonce returns 8 random bytes (RFC 9301 §5.2: the nonce is random).
func NewNonce() wire.Nonce {
	var n wire.Nonce
	_, _ = rand.Read(n[:])
	return n
}

// PeekNonce returns the nonce of a control message (bytes 4..11 of every
// type that has one, RFC 9301 §5).
func PeekNonce(b []byte) (wire.Nonce, bool) {
	if len(b) < 12 {
		return wire.Nonce{}, false
	}
	return wire.Nonce(b[4:12]), true
}

// EIDAddress returns the EID address of ip in iid: a plain address in
// instance 0, an instance-ID LCAF otherwise (RFC 8060 §4.1).
func EIDAddress(iid uint32, ip netip.Addr) wire.Address {
	if iid == 0 {
		return wire.IPAddress(ip)
	}
	return wire.IIDAddress(iid, ip)
}

// TTLMinutes converts a duration to a record TTL in whole minutes, at
// least 1 (RFC 9301 §5.4).
func TTLMinutes(d time.Duration) uint32 {
	m := d / time.Minute
	if m < 1 {
		return 1
	}
	if m > 0xfffffffe {
		return 0xfffffffe
	}
	return uint32(m)
}

// TTLDuration converts a record TTL to a duration; receiver-decides
// (RFC 9301 §5.4) becomes def. It saturates at the longest duration
// (about 292 years) instead of overflowing: a TTL of 0xfffffffe minutes
// from the wire lives long, it does not expire at once.
func TTLDuration(ttl uint32, def time.Duration) time.Duration {
	if ttl == wire.TTLReceiverDecides {
		return def
	}
	return time.Duration(min(int64(ttl), maxTTLMinutes)) * time.Minute
}

// maxTTLMinutes is the longest TTL, in minutes, a time.Duration holds.
const maxTTLMinutes = math.MaxInt64 / int64(time.Minute)

// AppendReplyHeader appends the first word and nonce of a Map-Reply with
// one record (RFC 9301 §5.4); the caller appends the encoded record.
func AppendReplyHeader(b []byte, nonce wire.Nonce) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(wire.TypeMapReply)<<28|1)
	return append(b, nonce[:]...)
}

// InnerSource picks the inner source address of an ECM for eid: an
// ITR-RLOC of eid's family, else the requester when it matches, else the
// unspecified address of that family (RFC 9301 §5.8).
func InnerSource(req *wire.MapRequest, requester, eid netip.Addr) netip.Addr {
	for i := range req.ITRRLOCs {
		a := &req.ITRRLOCs[i]
		if (a.AFI == wire.AFIIPv4 || a.AFI == wire.AFIIPv6) && a.IP.Is4() == eid.Is4() {
			return a.IP
		}
	}
	if requester.Is4() == eid.Is4() {
		return requester
	}
	return unspecifiedOf(eid)
}

// Forward sends the Map-Request of m on in an ECM to dst: to an ETR (E
// bit) by a Map-Server or to a Map-Server (M bit) by a Map-Resolver
// (RFC 9301 §5.8). A request that came in an ECM keeps its inner IP and
// UDP headers, so the answer goes back to the ITR; a plain request is
// encapsulated with the requester as inner source. It reports whether the
// ECM was queued. A Map-Resolver's forward keeps the LISP-SEC data of the
// ECM it received (RFC 9303 §6.5); a Map-Server's forward to an ETR
// carries none (ForwardAuth gives it its own).
func (c *Core) Forward(dst netip.AddrPort, m *Msg, eid netip.Addr, toETR bool) bool {
	return c.ForwardAuth(dst, m, eid, toETR, nil)
}

// ForwardAuth is Forward with LISP-SEC authentication data auth (RFC 9303
// §6.1) replacing the received one, when not nil.
func (c *Core) ForwardAuth(dst netip.AddrPort, m *Msg, eid netip.Addr, toETR bool, auth *wire.ECMAuth) bool {
	b, err := c.AppendForward(c.fwdBuf[:0], m, eid, toETR, auth)
	if err != nil {
		c.stats.Msgs[wire.TypeECM].SendErrors++
		return false
	}
	c.fwdBuf = b
	_ = c.Send(dst, b, wire.TypeECM)
	return true
}

// AppendForward appends to b the ECM that ForwardAuth sends, without
// sending it (the interconnect wraps it in a signed Map-Invoke).
func (c *Core) AppendForward(b []byte, m *Msg, eid netip.Addr, toETR bool, auth *wire.ECMAuth) ([]byte, error) {
	var out wire.ECM
	if m.ECM != nil {
		out = *m.ECM
	} else {
		out = wire.ECM{Src: InnerSource(m.Request, m.Src.Addr(), eid), Dst: eid, SrcPort: m.Port, DstPort: wire.ControlPort, TTL: 64}
	}
	out.ToETR, out.ToMapServer, out.DDT = toETR, !toETR, false
	switch {
	case auth != nil:
		out.Security, out.Auth = true, *auth
	case toETR || m.ECM == nil:
		out.Security = false
	}
	out.Message = m.Raw
	return out.Append(b)
}

// CloneRecord deep-copies r, reusing dst's locator slice.
func CloneRecord(r *wire.Record, dst wire.Record) wire.Record {
	locs := dst.Locators[:0]
	dst = *r
	dst.EID = r.EID.Clone()
	for i := range r.Locators {
		locs = append(locs, CloneLocator(&r.Locators[i]))
	}
	dst.Locators = locs
	return dst
}

// CloneLocator deep-copies l.
func CloneLocator(l *wire.Locator) wire.Locator {
	c := *l
	c.Address = l.Address.Clone()
	return c
}

// AddrEqual compares two addresses by their encoding.
func AddrEqual(a, b *wire.Address) bool {
	if a.AFI != b.AFI {
		return false
	}
	switch a.AFI {
	case wire.AFIIPv4, wire.AFIIPv6:
		return a.IP == b.IP
	case wire.AFIMAC, wire.AFIMAC48:
		return a.MAC == b.MAC
	case wire.AFIDistName:
		return a.Name == b.Name
	}
	var x, y [256]byte
	ea, err1 := a.Append(x[:0])
	eb, err2 := b.Append(y[:0])
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}
