package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"net/netip"
	"testing"
)

var testKey = []byte("site-password-1")

// Map-Register with I, T, a (merge) and M set, HMAC-SHA-256-128
// authentication (zeroed here, as Append writes it) and the xTR-ID trailer
// (RFC 9301 §5.6):
//
//	0000  32 00 0d 01 a1 b2 c3 d4  e5 f6 07 18 01 02 00 10
//	0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
//	0020  00 00 00 03 01 18 10 00  00 00 40 03 00 00 02 00
//	0030  00 0a 00 00 03 e8 00 01  c0 a8 00 00 01 64 ff 00
//	0040  00 05 00 01 cb 00 71 05  0f 0e 0d 0c 0b 0a 09 08
//	0050  07 06 05 04 03 02 01 00  00 00 00 00 00 00 00 2a
//
// 32: type 3 with I (0x2); 00; 0d: T (0x08), a (0x04), M (0x01); 01: one
// record; nonce a1..18; Key ID 1, Algorithm ID 2, data length 16, 16 zero
// bytes; record: TTL 3 minutes, 1 locator, mask 24, A bit, EID LCAF IID 1000
// 192.168.0.0; locator p1 w100 mp255 mw0 L|R 203.0.113.5; xTR-ID 0f..00;
// site-ID 42.
var goldenMapRegister = []byte{
	0x32, 0x00, 0x0d, 0x01, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x01, 0x02, 0x00, 0x10,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x03, 0x01, 0x18, 0x10, 0x00, 0x00, 0x00, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00,
	0x00, 0x0a, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x00, 0x01, 0x64, 0xff, 0x00,
	0x00, 0x05, 0x00, 0x01, 0xcb, 0x00, 0x71, 0x05, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
	0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
}

func goldenRegisterRecords() []Record {
	return []Record{{
		TTL: 3, MaskLen: 24, Authoritative: true,
		EID: IIDAddress(1000, netip.MustParseAddr("192.168.0.0")),
		Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true,
			Address: IPAddress(netip.MustParseAddr("203.0.113.5"))}},
	}}
}

var goldenXTRID = XTRID{0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00}

func goldenMapRegisterMsg() *MapRegister {
	return &MapRegister{
		XTRIDPresent: true, UseTTL: true, Merge: true, WantMapNotify: true,
		Nonce:   Nonce{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18},
		Auth:    Auth{KeyID: 1, Alg: AuthHMACSHA256128, Data: make([]byte, 16)},
		Records: goldenRegisterRecords(),
		XTRID:   goldenXTRID,
		SiteID:  42,
	}
}

func TestMapRegisterGolden(t *testing.T) {
	checkGolden(t, goldenMapRegisterMsg(), goldenMapRegister)
	checkTruncations[MapRegister](t, goldenMapRegister)

	// Each flag lands on its own bit of the first word (RFC 9301 §5.6; R:
	// draft-ietf-lisp-nat-traversal).
	flags := []struct {
		name string
		set  func(*MapRegister)
		word uint32
	}{
		{"P", func(m *MapRegister) { m.ProxyReply = true }, 0x08000000},
		{"S", func(m *MapRegister) { m.Security = true }, 0x04000000},
		{"R", func(m *MapRegister) { m.RTR = true }, 0x01000000},
		{"E", func(m *MapRegister) { m.EIDNotify = true }, 0x00001000},
		{"T", func(m *MapRegister) { m.UseTTL = true }, 0x00000800},
		{"a", func(m *MapRegister) { m.Merge = true }, 0x00000400},
		{"M", func(m *MapRegister) { m.WantMapNotify = true }, 0x00000100},
	}
	for _, f := range flags {
		m := goldenMapRegisterMsg()
		m.XTRIDPresent, m.UseTTL, m.Merge, m.WantMapNotify = false, false, false, false
		m.XTRID, m.SiteID = XTRID{}, 0
		f.set(m)
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]); w != 0x30000001|f.word {
			t.Fatalf("flag %s: first word %08x, want %08x", f.name, w, 0x30000001|f.word)
		}
		checkRoundTrip(t, m, goldenMapRegister)
	}
}

// independentHMAC computes the authentication data the way RFC 9301 §5.6
// describes it, with crypto/hmac directly: over the whole message with the
// authentication data zeroed, truncated to n bytes.
func independentHMAC(h func() hash.Hash, key, msg []byte, off, n int) []byte {
	z := append([]byte(nil), msg...)
	clear(z[off : off+n])
	mac := hmac.New(h, key)
	mac.Write(z)
	return mac.Sum(nil)[:n]
}

func TestMapRegisterHMACGolden(t *testing.T) {
	m := goldenMapRegisterMsg()
	signed, err := m.AppendSigned(nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	// Only the 16 bytes of authentication data differ from the golden bytes.
	if !bytes.Equal(signed[:16], goldenMapRegister[:16]) || !bytes.Equal(signed[32:], goldenMapRegister[32:]) {
		t.Fatalf("signed message differs outside the authentication data:\n%x\n%x", signed, goldenMapRegister)
	}
	mac := hmac.New(sha256.New, testKey)
	mac.Write(goldenMapRegister) // the golden bytes have zeroed data
	want := mac.Sum(nil)[:16]
	if !bytes.Equal(signed[16:32], want) {
		t.Fatalf("HMAC-SHA-256-128 %x, crypto/hmac says %x", signed[16:32], want)
	}
	var got MapRegister
	if err := VerifyMapRegister(signed, testKey, &got); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !bytes.Equal(got.Auth.Data, want) || got.SiteID != 42 || got.XTRID != goldenXTRID || !got.Merge {
		t.Fatalf("verified message: %+v", got)
	}
	if err := VerifyMapRegister(signed, []byte("site-password-2"), &got); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
	if err := VerifyMapRegister(goldenMapRegister, testKey, &got); !errors.Is(err, ErrAuth) {
		t.Fatalf("unsigned (zero) data: %v, want ErrAuth", err)
	}
	checkTamper(t, signed, func(b []byte) error {
		var m MapRegister
		return VerifyMapRegister(b, testKey, &m)
	})
}

// checkTamper flips each bit of each byte of a signed message in turn. Every
// change must fail verification; a change that still parses must fail with
// ErrAuth. It also requires that changes in the authentication data, the
// nonce and the last 24 bytes (xTR-ID and site-ID) fail with ErrAuth.
func checkTamper(t *testing.T, signed []byte, verify func([]byte) error) {
	t.Helper()
	if err := verify(signed); err != nil {
		t.Fatalf("untouched message: %v", err)
	}
	authErrs := 0
	for i := range signed {
		for bit := range 8 {
			b := append([]byte(nil), signed...)
			b[i] ^= 1 << bit
			err := verify(b)
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: verified", i, bit)
			}
			mustAuth := (i >= 4 && i < 12) || (i >= authDataOff && i < authDataOff+int(signed[15])) || i >= len(signed)-xtrTrailerLen
			if errors.Is(err, ErrAuth) {
				authErrs++
			} else if mustAuth {
				t.Fatalf("byte %d bit %d flipped: %v, want ErrAuth", i, bit, err)
			}
		}
	}
	if authErrs < len(signed)*8/2 {
		t.Fatalf("only %d of %d single-bit changes were caught by the HMAC", authErrs, len(signed)*8)
	}
}

func TestMapRegisterAlgorithms(t *testing.T) {
	for _, c := range []struct {
		alg  AuthAlg
		full bool
		n    int
		h    func() hash.Hash
	}{
		{AuthHMACSHA1_96, false, 12, sha1.New},
		{AuthHMACSHA1_96, true, 20, sha1.New},
		{AuthHMACSHA256128, false, 16, sha256.New},
		{AuthHMACSHA256128, true, 32, sha256.New},
	} {
		m := goldenMapRegisterMsg()
		m.Auth = Auth{KeyID: 7, Alg: c.alg, Data: make([]byte, AuthDataLen(c.alg, c.full))}
		if len(m.Auth.Data) != c.n {
			t.Fatalf("%v full=%v: %d bytes, want %d", c.alg, c.full, len(m.Auth.Data), c.n)
		}
		signed, err := m.AppendSigned([]byte("prefix"), testKey)
		if err != nil {
			t.Fatal(err)
		}
		if string(signed[:6]) != "prefix" {
			t.Fatal("AppendSigned overwrote the bytes before the message")
		}
		signed = signed[6:]
		if want := independentHMAC(c.h, testKey, signed, authDataOff, c.n); !bytes.Equal(signed[authDataOff:authDataOff+c.n], want) {
			t.Fatalf("%v/%d: data %x, crypto/hmac says %x", c.alg, c.n, signed[authDataOff:authDataOff+c.n], want)
		}
		var got MapRegister
		if err := VerifyMapRegister(signed, testKey, &got); err != nil {
			t.Fatalf("%v/%d: %v", c.alg, c.n, err)
		}
		if got.Auth.KeyID != 7 || got.Auth.Alg != c.alg || len(got.Auth.Data) != c.n {
			t.Fatalf("%v/%d: parsed auth %+v", c.alg, c.n, got.Auth)
		}
		if err := VerifyMapRegister(signed, testKey[1:], &got); !errors.Is(err, ErrAuth) {
			t.Fatalf("%v/%d wrong key: %v", c.alg, c.n, err)
		}
		signed[len(signed)-1] ^= 0x80 // site-ID byte: the trailer is covered
		if err := VerifyMapRegister(signed, testKey, &got); !errors.Is(err, ErrAuth) {
			t.Fatalf("%v/%d tampered trailer: %v", c.alg, c.n, err)
		}
	}
}

// An older peer sends a 16-bit Key ID whose value is the algorithm (Key ID 0
// and Algorithm ID 2 in RFC 9301 terms) and the full 32-byte HMAC-SHA-256.
// Built here by hand from the golden bytes and signed with crypto/hmac.
func TestMapRegisterOldKeyID(t *testing.T) {
	var msg []byte
	msg = append(msg, goldenMapRegister[:12]...)
	msg = append(msg, 0x00, 0x02, 0x00, 0x20) // 16-bit Key ID 2, 32 bytes of data
	msg = append(msg, make([]byte, 32)...)
	msg = append(msg, goldenMapRegister[32:]...)
	copy(msg[16:48], independentHMAC(sha256.New, testKey, msg, 16, 32))

	var m MapRegister
	if err := VerifyMapRegister(msg, testKey, &m); err != nil {
		t.Fatalf("old 16-bit Key ID peer: %v", err)
	}
	if m.Auth.KeyID != 0 || m.Auth.Alg != AuthHMACSHA256128 || len(m.Auth.Data) != 32 {
		t.Fatalf("parsed auth %+v", m.Auth)
	}
	// Re-encoding and signing with the same key reproduces the peer's bytes.
	again, err := m.AppendSigned(nil, testKey)
	if err != nil || !bytes.Equal(again, msg) {
		t.Fatalf("re-signed %v\n got %x\nwant %x", err, again, msg)
	}
	// Same with 16-bit Key ID 1: HMAC-SHA-1, full 20 bytes.
	msg = append(msg[:12:12], 0x00, 0x01, 0x00, 0x14)
	msg = append(msg, make([]byte, 20)...)
	msg = append(msg, goldenMapRegister[32:]...)
	copy(msg[16:36], independentHMAC(sha1.New, testKey, msg, 16, 20))
	if err := VerifyMapRegister(msg, testKey, &m); err != nil || m.Auth.Alg != AuthHMACSHA1_96 {
		t.Fatalf("old 16-bit Key ID 1 peer: %v %+v", err, m.Auth)
	}
}

func TestMapRegisterNoAuth(t *testing.T) {
	m := goldenMapRegisterMsg()
	m.Auth = Auth{}
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got MapRegister
	if err := VerifyMapRegister(b, testKey, &got); !errors.Is(err, ErrAuth) {
		t.Fatalf("algorithm 0: %v, want ErrAuth", err)
	}
	// Accepting it is an explicit choice: Parse, then look at Auth.Alg.
	if err := got.Parse(b); err != nil || got.Auth.Alg != AuthNone || len(got.Auth.Data) != 0 {
		t.Fatalf("parse unauthenticated: %v %+v", err, got.Auth)
	}
	if _, err := m.AppendSigned(nil, testKey); !errors.Is(err, ErrBadValue) {
		t.Fatalf("signing with algorithm 0: %v", err)
	}
	// Lengths the algorithm does not produce are refused both ways.
	for _, a := range []Auth{
		{Alg: AuthHMACSHA256128, Data: make([]byte, 20)},
		{Alg: AuthHMACSHA1_96, Data: make([]byte, 16)},
		{Alg: AuthNone, Data: make([]byte, 4)},
		{Alg: 9, Data: make([]byte, 16)},
	} {
		m.Auth = a
		if _, err := m.Append(nil); !errors.Is(err, ErrBadValue) {
			t.Fatalf("append %v with %d bytes: %v", a.Alg, len(a.Data), err)
		}
		bad := append([]byte(nil), goldenMapRegister[:12]...)
		bad = append(bad, 0, byte(a.Alg), 0, byte(len(a.Data)))
		bad = append(bad, a.Data...)
		bad = append(bad, goldenMapRegister[32:]...)
		if err := got.Parse(bad); !errors.Is(err, ErrBadValue) {
			t.Fatalf("parse %v with %d bytes: %v", a.Alg, len(a.Data), err)
		}
	}
}

func TestMapRegisterRoundTrip(t *testing.T) {
	for _, e := range testEIDs {
		t.Run(e.name, func(t *testing.T) {
			m := &MapRegister{
				ProxyReply: true, Security: true, RTR: true, EIDNotify: true, Merge: true,
				Nonce: Nonce{0, 0, 0, 0, 0, 0, 0, 1},
				Auth:  Auth{KeyID: 255, Alg: AuthHMACSHA1_96, Data: make([]byte, 12)},
				Records: []Record{
					{TTL: 1440, MaskLen: e.masklen, Authoritative: true, EID: e.eid, Locators: []Locator{
						{Priority: 1, Weight: 1, MPriority: 255, Reachable: true,
							Address: IPAddress(netip.MustParseAddr("192.0.2.33"))},
					}},
					{TTL: 0, MaskLen: e.masklen, EID: e.eid},
				},
			}
			b := checkRoundTrip(t, m, goldenMapRegister)
			checkTruncations[MapRegister](t, b)
			m.XTRIDPresent, m.XTRID, m.SiteID = true, XTRID{15: 1}, 0xfedcba9876543210
			b = checkRoundTrip(t, m, goldenMapRegister)
			checkTruncations[MapRegister](t, b)
			m.Auth = Auth{}
			checkRoundTrip(t, m, goldenMapRegister)
		})
	}
}

func TestMapRegisterBadInput(t *testing.T) {
	var m MapRegister
	for _, typ := range []byte{0x10, 0x20, 0x40, 0x50, 0x80} {
		b := append([]byte(nil), goldenMapRegister...)
		b[0] = typ | b[0]&0x0f
		if err := m.Parse(b); !errors.Is(err, ErrBadType) {
			t.Fatalf("type byte %02x: %v, want ErrBadType", b[0], err)
		}
		if err := VerifyMapRegister(b, testKey, &m); !errors.Is(err, ErrBadType) {
			t.Fatalf("verify type byte %02x: %v, want ErrBadType", b[0], err)
		}
	}
	b := append([]byte(nil), goldenMapRegister...)
	b[3] = 255
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("record count 255: %v", err)
	}
	b = append([]byte(nil), goldenMapRegister...)
	b[15] = 0xff // auth data length beyond the message
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("auth length 255: %v", err)
	}
	b = append([]byte(nil), goldenMapRegister...)
	b[0] &^= 0x02 // I bit cleared: the trailer becomes trailing garbage
	if err := m.Parse(b); !errors.Is(err, ErrBadLength) {
		t.Fatalf("trailer without I bit: %v", err)
	}
	if _, err := (&MapRegister{Records: make([]Record, 256)}).Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("256 records: %v", err)
	}
}

func mapRegisterSeeds() [][]byte {
	signed, err := goldenMapRegisterMsg().AppendSigned(nil, testKey)
	if err != nil {
		panic(err)
	}
	m := goldenMapRegisterMsg()
	m.XTRIDPresent, m.Auth = false, Auth{Alg: AuthHMACSHA1_96, Data: make([]byte, 20)}
	m.Records[0].EID, m.Records[0].MaskLen = MACAddress([6]byte{0xaa, 0, 0, 0, 0, 1}), 48
	m.Records = append(m.Records, Record{TTL: 1, MaskLen: 128,
		EID: IPAddress(netip.MustParseAddr("2001:db8::1"))})
	other, err := m.AppendSigned(nil, testKey)
	if err != nil {
		panic(err)
	}
	return [][]byte{goldenMapRegister, signed, other}
}

func FuzzMapRegister(f *testing.F) {
	nameSeeds[*MapRegister](f)
	for _, s := range mapRegisterSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStable[MapRegister](t, data, goldenMapRegister)
		// Verification never panics and never accepts a message that does not parse.
		var m MapRegister
		if VerifyMapRegister(data, testKey, &m) == nil && m.Parse(data) != nil {
			t.Fatal("verified a message that does not parse")
		}
	})
}

func TestMapRegisterSeedCorpus(t *testing.T) {
	seeds := mapRegisterSeeds()
	for _, s := range seeds {
		var m MapRegister
		if err := m.Parse(s); err != nil {
			t.Fatalf("seed does not parse: %v", err)
		}
	}
	checkSeedCorpus(t, "FuzzMapRegister", seeds)
}
