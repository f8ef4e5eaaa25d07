package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"testing"
	"time"
)

// goldenSignedReferral is a Map-Referral whose first record (MS-REFERRAL for
// 10.1.0.0/16, as in goldenMapReferral) carries one RSA-SHA256 sig section
// (RFC 8111 §6.4.1): original TTL 1440, valid 2026-12-01..2027-01-01 UTC,
// key tag 0x1234, 256-byte signature by testdata/ddt_rsa_key.pem. The
// second record is the unsigned NOT-AUTHORITATIVE one. Computed
// independently of this package by testdata/ddt_sig_golden.py (bytes packed
// with Python's struct from the RFC layouts, signed with the cryptography
// package).
const goldenSignedReferralHex = "600000020102030405060708000005a002103000100000010a0100000132ff0000010001c00002010132ff0000010001c0000202000005a06b36ec806b0e0e001234010001000000a0f14bad1e29f10d8d0ea3b6240abdbf8742c706f13793a32528532e7d1ff8ddfe611150e07cbb0dd3b9a2c36bfe1b09154ce446377580d78224f97b5ee450c8b9e2e4bdc085dc2f1bf67057542d7ddd38e66e3fb711863ed4ba6428a63949d3f0e0d65adb22945893782dca797ade873266102cd2fda7e6b50e0febf94a75984caf940733e0fdc816e0ad02441b6490f1ba0afb5393e7ea10a1f598fbd248bf394ba85d3b8b7d07441be250e63fe9fbc0e12ae2aba1a62d71f0a3dd35a5a031eca39f0f1c5b2889804a22c6cc6cdd77c9f0475813b155f7f1f0dff9b0a5487a6731ac1914e98f4071167628b9d3699b59e5f5659e97444f6fca3e4530bc890d000000000080a8000000000220010db8000000000000000000000001"

// goldenSignedData is what the signature covers, from the same script.
const goldenSignedDataHex = "0000000002103000100000010a0100000132ff0000010001c00002010132ff0000010001c0000202000005a06b36ec806b0e0e001234000001000000"

// sigNow lies inside the golden signature's validity period.
var sigNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PublicKey) {
	t.Helper()
	kb, err := os.ReadFile("testdata/ddt_rsa_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile("testdata/ddt_rsa_pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ = pem.Decode(pb)
	p, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey), p.(*rsa.PublicKey)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleSignedReferral(t *testing.T, key *rsa.PrivateKey) *MapReferral {
	m := sampleMapReferral()
	m.Records[0].SigCount = 1
	s := Signature{Expiration: 1798761600, Inception: 1796083200, KeyTag: 0x1234}
	if _, err := SignReferral(nil, &m.Records[0], &s, key); err != nil {
		t.Fatal(err)
	}
	m.Signatures = []Signature{s}
	return m
}

func TestSignedReferralGolden(t *testing.T) {
	key, pub := testKeys(t)
	golden := mustHex(t, goldenSignedReferralHex)
	m := sampleSignedReferral(t, key)
	var got MapReferral
	// Encoding, Len, round trip, every truncated prefix, trailing byte.
	msg2Golden(t, m, &got, golden, true)
	if len(got.RecordSignatures(0)) != 1 || len(got.RecordSignatures(1)) != 0 || got.Signatures[0].Algorithm.String() != "RSA-SHA256" {
		t.Fatalf("signatures %+v", got.Signatures)
	}
	data, err := VerifyReferral(nil, &got.Records[0], &got.RecordSignatures(0)[0], pub, sigNow)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !bytes.Equal(data, mustHex(t, goldenSignedDataHex)) {
		t.Fatalf("signed data\n got %x\nwant %s", data, goldenSignedDataHex)
	}
	// A cached record whose TTL went down still verifies.
	got.Records[0].TTL = 100
	if _, err := VerifyReferral(nil, &got.Records[0], &got.Signatures[0], pub, sigNow); err != nil {
		t.Fatalf("decreased TTL: %v", err)
	}
}

func TestSignedReferralForged(t *testing.T) {
	_, pub := testKeys(t)
	golden := mustHex(t, goldenSignedReferralHex)
	verify := func(b []byte, now time.Time) error {
		var m MapReferral
		if err := m.Parse(b); err != nil {
			t.Fatalf("parse: %v", err)
		}
		_, err := VerifyReferral(nil, &m.Records[0], &m.Signatures[0], pub, now)
		return err
	}
	for _, c := range []struct {
		name string
		off  int
		v    byte
	}{
		{"referral target changed", 0x27, 9},  // 192.0.2.1 -> 192.0.2.9
		{"referral type changed", 0x12, 0x10}, // MS-REFERRAL -> NODE-REFERRAL, A kept
		{"mask length changed", 0x11, 8},
		{"signature byte flipped", 0x50, 0x00},
		{"expiration extended", 0x38, 0x7f},
		{"original TTL raised", 0x35, 0xff},
		{"key tag changed", 0x40, 0x99},
	} {
		b := msg2Patched(golden, c.off, c.v)
		if bytes.Equal(b, golden) {
			t.Fatalf("%s: patch changes nothing", c.name)
		}
		if err := verify(b, sigNow); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", c.name, err)
		}
	}
	// Outside the validity period.
	for _, now := range []time.Time{time.Unix(1796083200-1, 0), time.Unix(1798761600+1, 0)} {
		if err := verify(golden, now); !errors.Is(err, ErrAuth) {
			t.Errorf("at %v: %v, want ErrAuth", now, err)
		}
	}
	// A record TTL above the signed one.
	var m MapReferral
	if err := m.Parse(golden); err != nil {
		t.Fatal(err)
	}
	m.Records[0].TTL = 1441
	if _, err := VerifyReferral(nil, &m.Records[0], &m.Signatures[0], pub, sigNow); !errors.Is(err, ErrAuth) {
		t.Errorf("raised TTL: %v", err)
	}
	// Signed by another key.
	other := mustRSAKey(t)
	m2 := sampleSignedReferral(t, other)
	if _, err := VerifyReferral(nil, &m2.Records[0], &m2.Signatures[0], pub, sigNow); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v", err)
	}
	// Unknown algorithm.
	m.Records[0].TTL = 1440
	m.Signatures[0].Algorithm = 2
	if _, err := VerifyReferral(nil, &m.Records[0], &m.Signatures[0], pub, sigNow); !errors.Is(err, ErrBadValue) {
		t.Errorf("algorithm 2: %v", err)
	}
}

func TestSignedReferralBad(t *testing.T) {
	golden := mustHex(t, goldenSignedReferralHex)
	var m MapReferral
	// Sig Length one more than the bytes present.
	if err := m.Parse(msg2Patched(golden, 0x42, 0x02)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Sig Length 512: %v", err)
	}
	// SigCnt 15 on the first record: refused before growing the slice.
	if err := m.Parse(msg2Patched(golden, 20, 0xf0)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("SigCnt 15: %v", err)
	}
	// SigCnt and Signatures that disagree.
	s := sampleMapReferral()
	s.Records[0].SigCount = 1
	if _, err := s.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("SigCnt 1 without signatures: %v", err)
	}
	s.Records[0].SigCount = 0
	s.Signatures = []Signature{{}}
	if _, err := s.Append([]byte{9}); !errors.Is(err, ErrBadValue) {
		t.Fatalf("signature without SigCnt: %v", err)
	}
	s = sampleMapReferral()
	s.Records[0].SigCount = 1
	s.Signatures = []Signature{{Sig: make([]byte, 0x10000)}}
	if b, err := s.Append([]byte{9}); !errors.Is(err, ErrTooLarge) || !bytes.Equal(b, []byte{9}) {
		t.Fatalf("64 KiB signature: %v, %x", err, b)
	}
}

// TestSignedReferralParseAllocs: parsing into a used struct allocates
// nothing, signatures included.
func TestSignedReferralParseAllocs(t *testing.T) {
	golden := mustHex(t, goldenSignedReferralHex)
	var m MapReferral
	if err := m.Parse(golden); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.Parse(golden) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

func FuzzSignature(f *testing.F) {
	golden, _ := hex.DecodeString(goldenSignedReferralHex)
	f.Add(golden[0x34 : 0x34+20+256])
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Signature
		n, err := s.Parse(data)
		if err != nil {
			return
		}
		b, err := s.Append(nil)
		if err != nil || len(b) != n || s.Len() != n || !bytes.Equal(b[:14], data[:14]) || !bytes.Equal(b[20:], data[20:n]) {
			t.Fatalf("re-encoding: %v\n in %x\nout %x", err, data[:n], b)
		}
	})
}

func mustRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	// A throwaway key is enough to show a wrong signer fails.
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// BenchmarkSignReferral: what a DDT node pays for one signed record
// (RSA-2048, PKCS #1 v1.5, SHA-256).
func BenchmarkSignReferral(b *testing.B) {
	key, _ := testKeys(b)
	m := sampleMapReferral()
	m.Records[0].SigCount = 1
	var s Signature
	var scratch []byte
	for b.Loop() {
		var err error
		if scratch, err = SignReferral(scratch, &m.Records[0], &s, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyReferral: what a resolver pays to check one.
func BenchmarkVerifyReferral(b *testing.B) {
	_, pub := testKeys(b)
	var m MapReferral
	if err := m.Parse(mustHex(b, goldenSignedReferralHex)); err != nil {
		b.Fatal(err)
	}
	var scratch []byte
	for b.Loop() {
		var err error
		if scratch, err = VerifyReferral(scratch, &m.Records[0], &m.Signatures[0], pub, sigNow); err != nil {
			b.Fatal(err)
		}
	}
}
