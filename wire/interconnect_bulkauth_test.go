package wire

import (
	"errors"
	"net/netip"
	"testing"
)

// Map-Bulk-Request with the S bit: the authentication field follows the
// nonce (docs/interconnect.md), HMAC-SHA-256-128 (zeroed here).
//
//	0000  ff f2 c0 00 31 32 33 34  35 36 37 38 05 02 00 10   A, S, 0 prefixes, key 5, alg 2, 16 bytes
//	0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00   authentication data
//	0020  00 00 00 00                                        max 0, no cookie
var goldenMapBulkRequestSigned = []byte{
	0xff, 0xf2, 0xc0, 0x00, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x05, 0x02, 0x00, 0x10,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00,
}

func TestBulkSigned(t *testing.T) {
	req := &MapBulkRequest{Nonce: msxNonce2, All: true, Auth: NewAuth(5, AuthHMACSHA256128, false)}
	msg2Golden(t, req, &MapBulkRequest{}, goldenMapBulkRequestSigned, true)

	key := []byte("agreement")
	for _, m := range []msg2Codec{
		req,
		&MapBulkRequest{Nonce: msxNonce2, MaxRecords: 9, Cookie: []byte{1, 2, 3}, Auth: NewAuth(1, AuthHMACSHA1_96, true),
			Scope: []EIDRecord{{MaskLen: 8, EID: IIDAddress(7, netip.MustParseAddr("10.0.0.0"))}}},
		&MapBulkReply{Nonce: msxNonce2, More: true, Cookie: []byte{9}, Auth: NewAuth(2, AuthHMACSHA256128, true),
			Records: []Record{sampleBulkRecord()}},
	} {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifySubscription(b, key); !errors.Is(err, ErrAuth) {
			t.Fatalf("unsigned verified: %v", err)
		}
		if err := SignSubscription(b, key); err != nil {
			t.Fatal(err)
		}
		if err := VerifySubscription(b, key); err != nil {
			t.Fatalf("good key: %v", err)
		}
		if err := VerifySubscription(b, []byte("other")); !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong key: %v", err)
		}
		last := msg2Patched(b, len(b)-1, b[len(b)-1]^1)
		if err := VerifySubscription(last, key); !errors.Is(err, ErrAuth) {
			t.Fatalf("tampered: %v", err)
		}
		// Every truncated prefix fails to parse, cleanly.
		for i := range len(b) {
			if err := m.Parse(b[:i]); err == nil {
				t.Fatalf("prefix of %d bytes parsed", i)
			}
		}
		if err := m.Parse(b); err != nil {
			t.Fatal(err)
		}
	}
	// The S bit with algorithm none, or a bad length, is refused.
	var p MapBulkRequest
	if err := p.Parse(msg2Patched(goldenMapBulkRequestSigned, 13, 0)); !errors.Is(err, ErrBadValue) {
		t.Fatalf("S with alg none: %v", err)
	}
	if _, err := (&MapBulkReply{Auth: Auth{Data: []byte{1}}}).Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("data without algorithm: %v", err)
	}
}

func FuzzMapBulkRequestSigned(f *testing.F) {
	f.Add(goldenMapBulkRequestSigned)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapBulkRequest
		msg2FuzzStable(t, data, &a, &b)
	})
}
