package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/netip"
	"testing"
)

// Info-Request (draft-ietf-lisp-nat-traversal §5), nonce 1112131415161718,
// Key ID 0, HMAC-SHA-256-128 (16 bytes, zeroed before signing), TTL 0, EID
// 192.168.1.0/24, then AFI 0.
//
//	0000  70 00 00 00 11 12 13 14  15 16 17 18 00 02 00 10   type 7 R=0, nonce, key 0 alg 2 len 16
//	0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00   authentication data
//	0020  00 00 00 00 00 18 00 01  c0 a8 01 00 00 00         TTL 0, /24 AFI 1 192.168.1.0, AFI 0
var goldenInfoRequest = []byte{
	0x70, 0x00, 0x00, 0x00, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x00, 0x02, 0x00, 0x10,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x01, 0xc0, 0xa8, 0x01, 0x00, 0x00, 0x00,
}

// Info-Reply: R set, Key ID 0, HMAC-SHA-1-96 (12 bytes), TTL 1440, the same
// EID, then the NAT-traversal LCAF (RFC 8060 §4.4): MS port 4342, ETR port
// 50000, global ETR RLOC 203.0.113.5, MS RLOC 198.51.100.1, private ETR
// RLOC 10.0.0.2, one RTR 198.51.100.9.
//
//	0000  78 00 00 00 11 12 13 14  15 16 17 18 00 01 00 0c   type 7 R=1, nonce, key 0 alg 1 len 12
//	0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 05 a0   authentication data, TTL 1440
//	0020  00 18 00 01 c0 a8 01 00  40 03 00 00 07 00 00 1c   EID, LCAF type 7 length 28
//	0030  10 f6 c3 50 00 01 cb 00  71 05 00 01 c6 33 64 01   ports, global ETR, MS
//	0040  00 01 0a 00 00 02 00 01  c6 33 64 09               private ETR, RTR
var goldenInfoReply = []byte{
	0x78, 0x00, 0x00, 0x00, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x00, 0x01, 0x00, 0x0c,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xa0,
	0x00, 0x18, 0x00, 0x01, 0xc0, 0xa8, 0x01, 0x00, 0x40, 0x03, 0x00, 0x00, 0x07, 0x00, 0x00, 0x1c,
	0x10, 0xf6, 0xc3, 0x50, 0x00, 0x01, 0xcb, 0x00, 0x71, 0x05, 0x00, 0x01, 0xc6, 0x33, 0x64, 0x01,
	0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x01, 0xc6, 0x33, 0x64, 0x09,
}

func sampleInfoRequest() *Info {
	return &Info{
		Nonce: Nonce{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18},
		Auth:  Auth{Alg: AuthHMACSHA256128, Data: make([]byte, 16)},
		EID:   EIDRecord{MaskLen: 24, EID: IPAddress(netip.MustParseAddr("192.168.1.0"))},
	}
}

func TestInfoRequestGolden(t *testing.T) {
	var got Info
	msg2Golden(t, sampleInfoRequest(), &got, goldenInfoRequest, true)
	if got.Reply || !got.NAT.IsZero() {
		t.Fatalf("request fields: %+v", got)
	}
}

func TestInfoReplyGolden(t *testing.T) {
	// The NAT-traversal LCAF is built by parsing its bytes, so that this
	// test does not depend on how Address represents LCAF type 7.
	m := &Info{
		Reply: true,
		Nonce: Nonce{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18},
		Auth:  Auth{Alg: AuthHMACSHA1_96, Data: make([]byte, 12)},
		TTL:   1440,
		EID:   EIDRecord{MaskLen: 24, EID: IPAddress(netip.MustParseAddr("192.168.1.0"))},
	}
	if n, err := m.NAT.Parse(goldenInfoReply[0x28:]); err != nil || n != len(goldenInfoReply)-0x28 {
		t.Fatalf("NAT LCAF: n=%d err=%v", n, err)
	}
	var got Info
	msg2Golden(t, m, &got, goldenInfoReply, false)
	if !got.Reply || got.TTL != 1440 || got.NAT.AFI != AFILCAF || got.NAT.LCAF.Type != LCAFNATT {
		t.Fatalf("reply fields: %+v", got)
	}
	if _, p, ok := got.EID.Prefix(); !ok || p != netip.MustParsePrefix("192.168.1.0/24") {
		t.Fatalf("EID %v %v", p, ok)
	}
}

func TestInfoBad(t *testing.T) {
	var m Info
	// A reply must carry the NAT-traversal LCAF: turn the request into a reply.
	if err := m.Parse(msg2Patched(goldenInfoRequest, 0, 0x78)); !errors.Is(err, ErrBadValue) {
		t.Fatalf("reply with AFI 0: %v", err)
	}
	r := sampleInfoRequest()
	r.Reply = true
	if _, err := r.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("append reply with AFI 0: %v", err)
	}
	// Authentication data length 7 for HMAC-SHA-256.
	bad := append([]byte(nil), goldenInfoRequest[:12]...)
	bad = append(bad, 0, 2, 0, 7, 1, 2, 3, 4, 5, 6, 7)
	bad = append(bad, goldenInfoRequest[32:]...)
	if err := m.Parse(bad); !errors.Is(err, ErrBadValue) {
		t.Fatalf("auth length 7: %v", err)
	}
	// Authentication data length beyond the message.
	if err := m.Parse(msg2Patched(goldenInfoRequest, 14, 0xff)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("auth length 0xff10: %v", err)
	}
	// EID mask length 33 for IPv4.
	if err := m.Parse(msg2Patched(goldenInfoRequest, 37, 33)); !errors.Is(err, ErrBadValue) {
		t.Fatalf("mask 33: %v", err)
	}
	if err := m.Parse(goldenMapReferral); !errors.Is(err, ErrBadType) {
		t.Fatalf("Map-Referral parsed as Info: %v", err)
	}
}

func TestInfoAuth(t *testing.T) {
	key := []byte("nat-key")
	for _, golden := range [][]byte{goldenInfoRequest, goldenInfoReply} {
		msg := append([]byte(nil), golden...)
		if err := VerifyInfo(msg, key); !errors.Is(err, ErrAuth) {
			t.Fatalf("unsigned message verified: %v", err)
		}
		if err := SignInfo(msg, key); err != nil {
			t.Fatal(err)
		}
		if err := VerifyInfo(msg, key); err != nil {
			t.Fatalf("good key: %v", err)
		}
		if err := VerifyInfo(msg, []byte("wrong-key")); !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong key: %v", err)
		}
		tampered := msg2Patched(msg, len(msg)-1, msg[len(msg)-1]^1)
		if err := VerifyInfo(tampered, key); !errors.Is(err, ErrAuth) {
			t.Fatalf("tampered message: %v", err)
		}
		// The signed message still parses and keeps its data.
		var m Info
		if err := m.Parse(msg); err != nil || bytes.Equal(m.Auth.Data, make([]byte, len(m.Auth.Data))) {
			t.Fatalf("signed parse: %v data %x", err, m.Auth.Data)
		}
	}
	// Independent computation: HMAC-SHA-256 over the message with zeroed
	// data, truncated to 16 bytes, lands at offset 16.
	msg := append([]byte(nil), goldenInfoRequest...)
	mac := hmac.New(sha256.New, key)
	mac.Write(goldenInfoRequest)
	want := mac.Sum(nil)[:16]
	if err := SignInfo(msg, key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg[16:32], want) {
		t.Fatalf("HMAC\n got %x\nwant %x", msg[16:32], want)
	}
	if err := SignInfo(goldenMapReferral, key); !errors.Is(err, ErrBadType) {
		t.Fatalf("SignInfo on a Map-Referral: %v", err)
	}
	if err := VerifyInfo(goldenInfoRequest[:20], key); !errors.Is(err, ErrTruncated) {
		t.Fatalf("VerifyInfo on a truncated message: %v", err)
	}
}

func FuzzInfo(f *testing.F) {
	f.Add(goldenInfoRequest)
	f.Add(goldenInfoReply)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b Info
		msg2FuzzStable(t, data, &a, &b)
	})
}
