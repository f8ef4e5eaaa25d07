package regstore

import (
	"errors"
	"fmt"

	"github.com/rloc-router/rloc/wire"
)

// authDataOff is where the authentication data starts in a Map-Register,
// Map-Notify and Map-Notify-Ack: first word, nonce, Key ID, Algorithm ID
// and Authentication Data Length (RFC 9301 §5.6, §5.7).
const authDataOff = 4 + 8 + 4

// Key is a shared key of a site, of a Map-Server peer or of a multicast
// domain (RFC 9301 §5.6).
type Key struct {
	// KeyID is the 8-bit Key ID that selects the key (RFC 9301 §5.6). A
	// peer using the older layout, whose 16-bit Key ID is the algorithm
	// (RFC 6833 §4.3), reads as Key ID 0: configure its key with ID 0.
	KeyID uint8
	// Alg is the HMAC algorithm (RFC 9301 §5.6): wire.AuthHMACSHA1_96 or
	// wire.AuthHMACSHA256128.
	Alg wire.AuthAlg
	// Secret is the HMAC key.
	Secret []byte
}

// Authentication errors; Verify wraps them with the detail.
var (
	// ErrNoAuth: the message has Algorithm ID 0 (no authentication), which
	// a Map-Server never accepts (RFC 9301 §5.6).
	ErrNoAuth = errors.New("no authentication (algorithm 0)")
	// ErrUnknownKey: no key has the message's Key ID and algorithm.
	ErrUnknownKey = errors.New("unknown key")
	// ErrAuth: the authentication data is of the wrong length or does not
	// match the key.
	ErrAuth = errors.New("authentication failed")
)

// Verify checks the authentication field a, parsed from msg (the received
// bytes of a Map-Register, Map-Notify or Map-Notify-Ack), against the key
// of keys with a's Key ID and algorithm: the HMAC over the whole message
// with the data zeroed, compared in constant time over all received bytes,
// truncated (12 or 16 bytes) or full (20 or 32) (RFC 9301 §5.6). It returns
// the key that verified.
func Verify(msg []byte, a *wire.Auth, keys []Key) (*Key, error) {
	if a.Alg == wire.AuthNone {
		return nil, ErrNoAuth
	}
	var k *Key
	for i := range keys {
		if keys[i].KeyID == a.KeyID && keys[i].Alg == a.Alg {
			k = &keys[i]
			break
		}
	}
	if k == nil {
		return nil, fmt.Errorf("%w: key ID %d, %v", ErrUnknownKey, a.KeyID, a.Alg)
	}
	if err := wire.VerifyAuth(msg, authDataOff, len(a.Data), a.Alg, k.Secret); err != nil {
		return nil, fmt.Errorf("%w: key ID %d, %d bytes of %v", ErrAuth, a.KeyID, len(a.Data), a.Alg)
	}
	return k, nil
}

// authLike returns an authentication field for signing an answer with the
// layout of a (Key ID, algorithm, truncated or full length), its data
// backed by buf.
func authLike(a *wire.Auth, buf *[]byte) wire.Auth {
	*buf = append((*buf)[:0], make([]byte, len(a.Data))...)
	return wire.Auth{KeyID: a.KeyID, Alg: a.Alg, Data: *buf}
}
