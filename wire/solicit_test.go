package wire

import (
	"errors"
	"net/netip"
	"testing"
)

// A signed Map-Solicit-Request and Map-Solicit-Response verify with the key
// they were signed with, and with no other; any flipped byte fails.
func TestSolicitSignVerify(t *testing.T) {
	key, other := []byte("peer-key"), []byte("other-key")
	req := &MapSolicitRequest{Nonce: msxNonce3, All: true, MaxRecords: 10,
		Auth:      NewAuth(1, AuthHMACSHA256128, false),
		Requester: IPAddress(netip.MustParseAddr("192.0.2.1")), Cookie: []byte{1, 2, 3}}
	resp := &MapSolicitResponse{Nonce: msxNonce3, More: true, Cookie: []byte{9},
		Auth:      NewAuth(1, AuthHMACSHA1_96, true),
		Responder: IPAddress(netip.MustParseAddr("192.0.2.2")), Records: []Record{sampleBulkRecord()}}
	for _, m := range []interface {
		Append([]byte) ([]byte, error)
		Len() int
	}{req, resp} {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != m.Len() {
			t.Fatalf("Len %d, encoded %d", m.Len(), len(b))
		}
		if err := VerifySolicit(b, key); !errors.Is(err, ErrAuth) {
			t.Fatalf("unsigned message verified: %v", err)
		}
		if err := SignSolicit(b, key); err != nil {
			t.Fatal(err)
		}
		if err := VerifySolicit(b, key); err != nil {
			t.Fatalf("verify: %v", err)
		}
		if err := VerifySolicit(b, other); !errors.Is(err, ErrAuth) {
			t.Fatalf("verified with another key: %v", err)
		}
		for i := range b {
			c := append([]byte(nil), b...)
			c[i] ^= 0x01
			if VerifySolicit(c, key) == nil {
				t.Fatalf("byte %d flipped still verifies", i)
			}
		}
	}
	if err := SignSolicit(goldenMapSubscribe, key); !errors.Is(err, ErrBadType) {
		t.Fatalf("sign a Map-Subscribe as solicitation: %v", err)
	}
	if err := VerifySolicit(goldenMapSolicitRequest, key); !errors.Is(err, ErrAuth) {
		t.Fatalf("algorithm 0 verified: %v", err)
	}
}
