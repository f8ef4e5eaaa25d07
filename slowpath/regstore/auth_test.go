package regstore_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// layout is how the Key ID and algorithm are written.
type layout uint8

const (
	// rfc9301: 8-bit Key ID, 8-bit Algorithm ID (RFC 9301 §5.6).
	rfc9301 layout = iota
	// legacy16: a 16-bit Key ID whose value is the algorithm (RFC 6833
	// §4.3), which reads as Key ID 0.
	legacy16
)

func (l layout) String() string { return [...]string{"rfc9301", "legacy-16-bit"}[l] }

// signedRegister returns a Map-Register for site "a" signed with alg in the
// given layout, truncated or full, with the secret, parsed back.
func signedRegister(t *testing.T, alg wire.AuthAlg, l layout, full bool, keyID uint8, secret []byte) ([]byte, *wire.MapRegister) {
	t.Helper()
	m := wire.MapRegister{Nonce: wire.Nonce{7}, Auth: wire.NewAuth(keyID, alg, full),
		Records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}
	raw, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if l == legacy16 {
		// The old layout: one 16-bit Key ID field carrying the algorithm.
		binary.BigEndian.PutUint16(raw[12:14], uint16(alg))
	}
	if err := wire.SignAuth(raw, 16, len(m.Auth.Data), alg, secret); err != nil {
		t.Fatal(err)
	}
	var p wire.MapRegister
	if err := p.Parse(raw); err != nil {
		t.Fatal(err)
	}
	return raw, &p
}

// TestAuthMatrix: every algorithm × Key ID layout × truncated/full length
// verifies with the right key and fails with a wrong one, both through
// Verify and through Register.
func TestAuthMatrix(t *testing.T) {
	for _, alg := range []wire.AuthAlg{wire.AuthHMACSHA1_96, wire.AuthHMACSHA256128} {
		for _, l := range []layout{rfc9301, legacy16} {
			for _, full := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%v/full=%v", alg, l, full), func(t *testing.T) {
					id := uint8(3)
					if l == legacy16 {
						id = 0
					}
					good := regstore.Key{KeyID: id, Alg: alg, Secret: []byte("the secret")}
					wrong := regstore.Key{KeyID: id, Alg: alg, Secret: []byte("the secreT")}
					raw, m := signedRegister(t, alg, l, full, id, good.Secret)
					if m.Auth.KeyID != id || m.Auth.Alg != alg || len(m.Auth.Data) != wire.AuthDataLen(alg, full) {
						t.Fatalf("parsed auth %+v", m.Auth)
					}
					// A Key ID and algorithm select one key: the first.
					if _, _, err := regstore.Verify(raw, &m.Auth, []regstore.Key{wrong, good}); !errors.Is(err, regstore.ErrAuth) {
						t.Fatalf("two keys of one ID: %v, want the first (wrong) one used", err)
					}
					if k, _, err := regstore.Verify(raw, &m.Auth, []regstore.Key{good}); err != nil || k.KeyID != id {
						t.Fatalf("right key: %v", err)
					}
					if _, _, err := regstore.Verify(raw, &m.Auth, []regstore.Key{wrong}); !errors.Is(err, regstore.ErrAuth) {
						t.Fatalf("wrong key: %v", err)
					}
					for _, mode := range []struct {
						key  regstore.Key
						want error
					}{{good, nil}, {wrong, regstore.ErrAuth}} {
						ss, err := regstore.NewSites([]*regstore.Site{{Name: "a", Keys: []regstore.Key{mode.key},
							Prefixes: []regstore.SitePrefix{more(0, "10.0.0.0/8")}}})
						if err != nil {
							t.Fatal(err)
						}
						e := newEnv(t, prefixKind(), ss, regstore.Config{})
						res := e.st.Register(etr1, raw, m)
						if !errors.Is(res.Err, mode.want) || (mode.want == nil) != (res.Err == nil) {
							t.Fatalf("Register with key %q: %v, want %v", mode.key.Secret, res.Err, mode.want)
						}
						if mode.want != nil && e.st.Stats().BadAuth != 1 {
							t.Fatalf("bad authentication not counted: %+v", e.st.Stats())
						}
					}
				})
			}
		}
	}
}

// TestAuthRefusals: what is refused besides a wrong key.
func TestAuthRefusals(t *testing.T) {
	sha256 := regstore.Key{KeyID: 3, Alg: wire.AuthHMACSHA256128, Secret: []byte("s")}
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T) ([]byte, *wire.MapRegister)
		keys  []regstore.Key
		want  error
		notIn error
	}{
		{name: "algorithm 0", keys: []regstore.Key{sha256, {KeyID: 0, Alg: wire.AuthNone}}, want: regstore.ErrNoAuth,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				m := wire.MapRegister{Auth: wire.Auth{}, Records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10)}}
				raw, err := m.Append(nil)
				if err != nil {
					t.Fatal(err)
				}
				return raw, &m
			}},
		{name: "unknown key ID", keys: []regstore.Key{sha256}, want: regstore.ErrUnknownKey,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				return signedRegister(t, wire.AuthHMACSHA256128, rfc9301, false, 4, sha256.Secret)
			}},
		{name: "known key ID, other algorithm", keys: []regstore.Key{sha256}, want: regstore.ErrUnknownKey,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				return signedRegister(t, wire.AuthHMACSHA1_96, rfc9301, false, 3, sha256.Secret)
			}},
		{name: "legacy layout without a key ID 0", keys: []regstore.Key{sha256}, want: regstore.ErrUnknownKey,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				return signedRegister(t, wire.AuthHMACSHA256128, legacy16, false, 0, sha256.Secret)
			}},
		{name: "short data", keys: []regstore.Key{sha256}, want: regstore.ErrAuth,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				raw, m := signedRegister(t, wire.AuthHMACSHA256128, rfc9301, false, 3, sha256.Secret)
				m.Auth.Data = m.Auth.Data[:8] // as a careless parser might leave it
				return raw, m
			}},
		{name: "SHA-1 length for SHA-256", keys: []regstore.Key{sha256}, want: regstore.ErrAuth,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				raw, m := signedRegister(t, wire.AuthHMACSHA256128, rfc9301, true, 3, sha256.Secret)
				m.Auth.Data = m.Auth.Data[:20]
				return raw, m
			}},
		{name: "tampered record", keys: []regstore.Key{sha256}, want: regstore.ErrAuth,
			make: func(t *testing.T) ([]byte, *wire.MapRegister) {
				raw, m := signedRegister(t, wire.AuthHMACSHA256128, rfc9301, false, 3, sha256.Secret)
				raw[len(raw)-1] ^= 1
				return raw, m
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, m := tc.make(t)
			if _, _, err := regstore.Verify(raw, &m.Auth, tc.keys); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			ss, err := regstore.NewSites([]*regstore.Site{{Name: "a", Keys: tc.keys, Prefixes: []regstore.SitePrefix{more(0, "10.0.0.0/8")}}})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, prefixKind(), ss, regstore.Config{})
			res := e.st.Register(etr1, raw, m)
			if !errors.Is(res.Err, tc.want) || e.st.Len() != 0 || e.st.Stats().BadAuth != 1 {
				t.Fatalf("Register: %+v, %d keys, stats %+v", res, e.st.Len(), e.st.Stats())
			}
			if evs := e.sink.take(); len(evs) != 1 || evs[0].Site != "a" || !errors.Is(evs[0].Reason, tc.want) {
				t.Fatalf("events %+v", evs)
			}
		})
	}
}

// TestShortDataDoesNotParse: authentication data of a length no algorithm
// produces is refused when the message is parsed, before any store sees it.
func TestShortDataDoesNotParse(t *testing.T) {
	raw, _ := signedRegister(t, wire.AuthHMACSHA256128, rfc9301, false, 3, []byte("s"))
	short := append([]byte(nil), raw[:16+8]...)
	short = append(short, raw[16+16:]...)
	binary.BigEndian.PutUint16(short[14:16], 8)
	var m wire.MapRegister
	if err := m.Parse(short); err == nil {
		t.Fatal("8 bytes of HMAC-SHA-256-128 data parsed")
	}
}
