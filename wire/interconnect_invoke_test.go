package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Map-Invoke (docs/interconnect.md): nonce msxNonce2, key 5,
// HMAC-SHA-256-128 (zeroed here), time 0x65000000, then the ECM
// goldenECM4.
//
//	0000  ff f7 00 00 31 32 33 34  35 36 37 38 05 02 00 10   sub-type 4087, nonce, key 5, alg 2, 16 bytes
//	0010  00 .. 00                                           authentication data
//	0020  00 00 00 00 65 00 00 00                            time
//	0028  80 ...                                             the ECM
var goldenMapInvokeHead = []byte{
	0xff, 0xf7, 0x00, 0x00, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x05, 0x02, 0x00, 0x10,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x65, 0x00, 0x00, 0x00,
}

func goldenMapInvoke() []byte { return append(bytes.Clone(goldenMapInvokeHead), goldenECM4...) }

func TestMapInvoke(t *testing.T) {
	m := &MapInvoke{Nonce: msxNonce2, Auth: NewAuth(5, AuthHMACSHA256128, false), Time: 0x65000000, ECM: goldenECM4}
	golden := goldenMapInvoke()
	b, err := m.Append([]byte{0xaa})
	if err != nil || !bytes.Equal(b[1:], golden) || b[0] != 0xaa || m.Len() != len(golden) {
		t.Fatalf("Append %x %v (Len %d)\nwant %x", b, err, m.Len(), golden)
	}
	var p MapInvoke
	for range 2 {
		if err := p.Parse(golden); err != nil || !reflect.DeepEqual(&p, m) {
			t.Fatalf("Parse %v: %+v", err, p)
		}
	}
	if SubTypeMapInvoke.String() != "Map-Invoke" {
		t.Fatal(SubTypeMapInvoke.String())
	}
	// Every prefix short of the ECM's first byte fails to parse.
	for i := range len(goldenMapInvokeHead) + 1 {
		if err := p.Parse(golden[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	// Something else than an ECM inside, or an algorithm with data of the
	// wrong length, is refused both ways.
	if err := p.Parse(msg2Patched(golden, len(goldenMapInvokeHead), 0x10)); !errors.Is(err, ErrBadType) {
		t.Fatalf("a Map-Request inside: %v", err)
	}
	if _, err := (&MapInvoke{ECM: []byte{0x10}}).Append(nil); !errors.Is(err, ErrBadType) {
		t.Fatalf("append a Map-Request inside: %v", err)
	}
	if err := p.Parse(msg2Patched(golden, 15, 0x08)); err == nil {
		t.Fatal("HMAC-SHA-256-128 with 8 bytes parsed")
	}
	// Signed with the agreement's key over the whole message: the wrong
	// key, or any byte changed (time, nonce, the ECM), fails.
	key := []byte("agreement")
	if err := VerifySubscription(golden, key); !errors.Is(err, ErrAuth) {
		t.Fatalf("unsigned verified: %v", err)
	}
	if err := SignSubscription(golden, key); err != nil {
		t.Fatal(err)
	}
	if err := VerifySubscription(golden, key); err != nil {
		t.Fatalf("good key: %v", err)
	}
	if err := VerifySubscription(golden, []byte("other")); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	for _, i := range []int{5, 35, len(golden) - 1} {
		if err := VerifySubscription(msg2Patched(golden, i, golden[i]^1), key); !errors.Is(err, ErrAuth) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
}

func FuzzMapInvoke(f *testing.F) {
	f.Add(goldenMapInvoke())
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapInvoke
		msg2FuzzStable(t, data, &a, &b)
	})
}
