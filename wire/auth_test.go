package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestAuthSignVerify(t *testing.T) {
	key := []byte("site-key")
	for _, alg := range []AuthAlg{AuthHMACSHA1_96, AuthHMACSHA256128} {
		for _, full := range []bool{false, true} {
			n := AuthDataLen(alg, full)
			msg := make([]byte, 40+n)
			for i := range msg {
				msg[i] = byte(i)
			}
			off := 16
			if err := SignAuth(msg, off, n, alg, key); err != nil {
				t.Fatal(err)
			}
			if err := VerifyAuth(msg, off, n, alg, key); err != nil {
				t.Fatalf("%v full=%v: %v", alg, full, err)
			}
			if err := VerifyAuth(msg, off, n, alg, []byte("wrong")); !errors.Is(err, ErrAuth) {
				t.Fatalf("%v full=%v wrong key: %v", alg, full, err)
			}
			msg[len(msg)-1] ^= 1 // a trailer byte (xTR-ID, site-ID) is covered
			if err := VerifyAuth(msg, off, n, alg, key); !errors.Is(err, ErrAuth) {
				t.Fatalf("%v full=%v tampered trailer: %v", alg, full, err)
			}
		}
	}
	// Independent computation for SHA-256: HMAC over the message with zeroed data.
	msg := make([]byte, 64)
	copy(msg, "abcdefgh")
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	want := m.Sum(nil)
	if err := SignAuth(msg, 20, 32, AuthHMACSHA256128, key); err != nil {
		t.Fatal(err)
	}
	if string(msg[20:52]) != string(want) {
		t.Fatalf("HMAC differs from an independent computation")
	}
	if err := VerifyAuth(msg, 20, 7, AuthHMACSHA256128, key); !errors.Is(err, ErrAuth) {
		t.Fatalf("odd length accepted: %v", err)
	}
	if err := VerifyAuth(msg, 60, 16, AuthHMACSHA256128, key); !errors.Is(err, ErrBadLength) {
		t.Fatalf("out of range accepted: %v", err)
	}
}
