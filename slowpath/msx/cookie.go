package msx

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath"
)

// A continuation cookie (Map-Bulk-Reply, docs/interconnect.md) is the
// provider's own business. rloc's says where the next page starts and
// proves that this provider issued it, to this requester, under this
// agreement, for this scope, not long ago:
//
//	version(1)=1 | scope hash(8) | issued, Unix ns(8) | serial(8) |
//	last IID(4) | last mask length(1) | last address length(1) | address(0, 4 or 16) |
//	last name length(1) | name (0 to 255) | MAC(16)
//
// The last key is an EID prefix (address length 4 or 16, name length 0)
// or a distinguished name (address length 0, mask length 0, name length
// at least 1).
//
// The MAC is HMAC-SHA-256 (truncated to 16 bytes) under a secret drawn at
// start-up, over the body, the requester's address and port and the
// agreement's name; a provider restart therefore invalidates every cookie.
// A serial is good for one request nonce: the same nonce again is a
// retransmission (the page is sent again), another nonce is a replay.

const (
	cookieVersion = 2
	cookieMACLen  = 16
	cookieMinLen  = 1 + 8 + 8 + 8 + 4 + 1 + 1 + 1 + 1 + cookieMACLen
	cookieMaxLen  = cookieMinLen - 1 + 16 + slowpath.MaxEIDNameLen
)

// cookie is a decoded continuation cookie.
type cookie struct {
	scope  uint64
	issued int64
	serial uint64
	last   key
}

// Cookie errors, counted by the provider.
var (
	errCookieBad     = errors.New("malformed or forged cookie")
	errCookieExpired = errors.New("expired cookie")
)

// appendCookie encodes c, signed for the requester and agreement.
func appendCookie(b []byte, c *cookie, secret []byte, requester netip.AddrPort, agreement string) []byte {
	start := len(b)
	b = append(b, cookieVersion)
	b = binary.BigEndian.AppendUint64(b, c.scope)
	b = binary.BigEndian.AppendUint64(b, uint64(c.issued))
	b = binary.BigEndian.AppendUint64(b, c.serial)
	b = binary.BigEndian.AppendUint32(b, c.last.IID)
	if c.last.name != "" {
		b = append(b, 0, 0, byte(len(c.last.name)))
		b = append(b, c.last.name...)
	} else {
		a := c.last.Prefix.Addr()
		b = append(b, byte(c.last.Prefix.Bits()), byte(a.BitLen()/8))
		b = append(b, a.AsSlice()...)
		b = append(b, 0)
	}
	mac := cookieMAC(b[start:], secret, requester, agreement)
	return append(b, mac[:cookieMACLen]...)
}

// parseCookie decodes and authenticates b; it never panics and allocates
// nothing but the MAC.
func parseCookie(b []byte, secret []byte, requester netip.AddrPort, agreement string) (cookie, error) {
	var c cookie
	if len(b) < cookieMinLen || len(b) > cookieMaxLen || b[0] != cookieVersion {
		return c, errCookieBad
	}
	body := b[:len(b)-cookieMACLen]
	mac := cookieMAC(body, secret, requester, agreement)
	if subtle.ConstantTimeCompare(mac[:cookieMACLen], b[len(body):]) != 1 {
		return c, errCookieBad
	}
	c.scope = binary.BigEndian.Uint64(b[1:])
	c.issued = int64(binary.BigEndian.Uint64(b[9:]))
	c.serial = binary.BigEndian.Uint64(b[17:])
	c.last.IID = binary.BigEndian.Uint32(b[25:])
	bits, alen := int(b[29]), int(b[30])
	if len(body) < 31+alen+1 {
		return c, errCookieBad
	}
	nlen := int(body[31+alen])
	if len(body) != 31+alen+1+nlen {
		return c, errCookieBad
	}
	var a netip.Addr
	switch alen {
	case 0:
		name := body[32:]
		if bits != 0 || nlen == 0 || slowpath.CheckEIDName(string(name)) != nil {
			return c, errCookieBad
		}
		c.last.name = string(name)
		return c, nil
	case 4:
		a = netip.AddrFrom4([4]byte(body[31:35]))
	case 16:
		a = netip.AddrFrom16([16]byte(body[31:47]))
	default:
		return c, errCookieBad
	}
	p, err := a.Prefix(bits)
	if err != nil || p.Addr() != a || nlen != 0 {
		return c, errCookieBad
	}
	c.last.Prefix = p
	return c, nil
}

// fresh checks the cookie's age against now.
func (c *cookie) fresh(now time.Time, lifetime time.Duration) error {
	issued := time.Unix(0, c.issued)
	if issued.After(now) || now.Sub(issued) > lifetime {
		return errCookieExpired
	}
	return nil
}

func cookieMAC(body, secret []byte, requester netip.AddrPort, agreement string) [sha256.Size]byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	a := requester.Addr().Unmap().As16()
	h.Write(a[:])
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], requester.Port())
	h.Write(port[:])
	h.Write([]byte(agreement))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
