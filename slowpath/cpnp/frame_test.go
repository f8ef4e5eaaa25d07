package cpnp

import (
	"crypto/ed25519"
	"errors"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// testFrame encodes m in a signed frame, as the role sends it.
func testFrame(m Message) []byte {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	r := &Role{priv: k, pub: [32]byte(k.Public().(ed25519.PublicKey))}
	b, err := r.frame(wire.Nonce{1, 2, 3, 4, 5, 6, 7, 8}, &m)
	if err != nil {
		panic(err)
	}
	return append([]byte(nil), b...)
}

// TestFrame: a frame parses back with its nonce, its identity and a
// signature that verifies over the signed bytes; every truncated prefix
// fails, and so does a frame with bytes after the signature.
func TestFrame(t *testing.T) {
	b := testFrame(Message{Type: Quotation, Seq: 7, Transaction: 9, CustomerID: "d1-1", Ephemeral: [32]byte{1},
		Prefixes: []Prefix{{IID: 3, Prefix: netip.MustParsePrefix("10.0.0.0/8")}}, Primitives: PrimBulk})
	var m Message
	n, signed, sig, err := ParseFrame(b, &m)
	if err != nil || n != (wire.Nonce{1, 2, 3, 4, 5, 6, 7, 8}) || m.CustomerID != "d1-1" || m.Ephemeral != ([32]byte{1}) {
		t.Fatalf("%v %v %+v", n, err, m)
	}
	if !ed25519.Verify(m.Identity[:], signed, sig) {
		t.Fatal("signature does not verify")
	}
	if st, _ := wire.PeekSharedSubType(b); st != SubType || b[0]>>4 != byte(wire.TypeSharedExtension) {
		t.Fatalf("header %x", b[:4])
	}
	for i := range len(b) {
		if _, _, _, err := ParseFrame(b[:i], &m); err == nil {
			t.Fatalf("prefix of %d bytes parsed", i)
		}
	}
	if _, _, _, err := ParseFrame(append(b, 0), &m); !errors.Is(err, ErrTruncated) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// FuzzParseFrame: no input panics; a frame that parses has a signature
// of 64 bytes right after the message, and its message encodes again.
func FuzzParseFrame(f *testing.F) {
	f.Add(testFrame(Message{Type: Offer, Seq: 1, CustomerID: "c", ProviderID: "p", Ephemeral: [32]byte{2}}))
	f.Add(testFrame(Message{Type: Ack, Seq: 2, CustomerID: "c"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		_, signed, sig, err := ParseFrame(b, &m)
		if err != nil {
			return
		}
		if len(sig) != ed25519.SignatureSize || len(signed)+len(sig) != len(b) {
			t.Fatalf("signed %d + signature %d of %d bytes", len(signed), len(sig), len(b))
		}
		if _, err := m.Append(nil); err != nil && len(m.Text) <= 255 {
			t.Fatalf("parsed %+v does not encode: %v", m, err)
		}
	})
}
