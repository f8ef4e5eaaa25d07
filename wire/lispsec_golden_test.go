package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

// LISP-SEC golden vectors (RFC 9303). The expected bytes were computed once,
// independently of this package, by testdata/lispsec_golden.py (Python's
// hmac and hashlib, HKDF written out from RFC 5869, AES Key Wrap from the
// cryptography package) and pasted here. Inputs: nonce 0102030405060708,
// ITR-OTK 00112233445566778899aabbccddeeff, Map-Resolver key "mr-key",
// site key "site-key".

var (
	secNonce  = Nonce{1, 2, 3, 4, 5, 6, 7, 8}
	secITROTK = [OTKLen]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
)

// AES Key Wrap itself: RFC 3394 §4.1 (128-bit KEK, 128-bit key data).
func TestAESKeyWrapRFC3394(t *testing.T) {
	kek := unhex(t, "000102030405060708090A0B0C0D0E0F")
	key := [OTKLen]byte(unhex(t, "00112233445566778899AABBCCDDEEFF"))
	want := unhex(t, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
	got, err := aesKeyWrap(kek, key)
	if err != nil || !bytes.Equal(got[:], want) {
		t.Fatalf("wrap %x (%v), want %x", got, err, want)
	}
	back, err := aesKeyUnwrap(kek, got)
	if err != nil || back != key {
		t.Fatalf("unwrap %x (%v)", back, err)
	}
	got[3] ^= 1
	if _, err := aesKeyUnwrap(kek, got); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered wrap: %v", err)
	}
}

func TestDeriveMSOTKGolden(t *testing.T) {
	for kdf, want := range map[SecKDF]string{
		SecKDFSHA256: "96f1851ea6bdb0c7d51bb87002c6ad01",
		SecKDFSHA1:   "fb05db583668c3642af35556586b03fa",
	} {
		got, err := DeriveMSOTK(kdf, secITROTK, secNonce)
		if err != nil || hex.EncodeToString(got[:]) != want {
			t.Errorf("%v: %x (%v), want %s", kdf, got, err, want)
		}
	}
	for _, kdf := range []SecKDF{SecKDFNone, 3} {
		if _, err := DeriveMSOTK(kdf, secITROTK, secNonce); !errors.Is(err, ErrBadValue) {
			t.Errorf("%v: %v", kdf, err)
		}
	}
}

func TestWrapOTKGolden(t *testing.T) {
	for _, c := range []struct {
		psk  string
		otk  string
		want string
	}{
		{"mr-key", "00112233445566778899aabbccddeeff", "d417f180ea0edf22f77492fa0c4e3f99cba0e23fb4754b87"},
		{"site-key", "96f1851ea6bdb0c7d51bb87002c6ad01", "0b2aad66e974c9b4607b89ae50f79a59ec278b66e7f3c98f"},
	} {
		var a ECMAuth
		otk := [OTKLen]byte(unhex(t, c.otk))
		if err := WrapOTK(&a, SecWrapAES128HKDF, otk, []byte(c.psk), secNonce); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(append(a.Preamble[:], a.OTK[:]...)); got != c.want {
			t.Errorf("%s: wrapped %s, want %s", c.psk, got, c.want)
		}
		back, err := UnwrapOTK(&a, []byte(c.psk), secNonce)
		if err != nil || back != otk {
			t.Errorf("%s: unwrap %x (%v)", c.psk, back, err)
		}
		if _, err := UnwrapOTK(&a, []byte("wrong"), secNonce); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: wrong key unwraps: %v", c.psk, err)
		}
		if _, err := UnwrapOTK(&a, []byte(c.psk), Nonce{9}); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: wrong nonce unwraps: %v", c.psk, err)
		}
	}
	// NULL-KEY-WRAP-128 carries the OTK in clear with a zero preamble.
	var a ECMAuth
	if err := WrapOTK(&a, SecWrapNullKey128, secITROTK, nil, secNonce); err != nil || a.OTK != secITROTK || a.Preamble != [8]byte{} {
		t.Fatalf("null wrap: %v %x %x", err, a.Preamble, a.OTK)
	}
	if err := WrapOTK(&a, 3, secITROTK, nil, secNonce); !errors.Is(err, ErrBadValue) {
		t.Fatalf("unknown wrap: %v", err)
	}
}

// goldenITRECMAD is the ECM authentication data of an ITR's request: type 1,
// Requested HMAC ID 2, OTK Length 24, Wrapping ID 2, the ITR-OTK wrapped
// with "mr-key", and an EID-AD of 4 bytes preferring KDF 2.
const goldenITRECMAD = "0100000200180002d417f180ea0edf22f77492fa0c4e3f99cba0e23fb4754b8700040002"

// goldenEIDAD: EID-AD length 32, KDF 2, one record (10.1.0.0/16), EID HMAC
// ID 2, HMAC-SHA-256-128 with the ITR-OTK over the EID-AD (HMAC zeroed).
const goldenEIDAD = "0020000201000002001000010a010000c1a9797b24701160d7bb54d517d26f22"

// goldenMSECMAD is the Map-Server's ECM authentication data towards the ETR:
// the MS-OTK wrapped with "site-key", then goldenEIDAD.
const goldenMSECMAD = "01000002001800020b2aad66e974c9b4607b89ae50f79a59ec278b66e7f3c98f" + goldenEIDAD

// goldenSecMapReply is the ETR's Map-Reply: S bit, one record 10.1.0.0/16
// TTL 1440 A, locator 192.0.2.1 (1/100/255/0, L R), MR AD type 1, the
// EID-AD, PKT-AD length 20, PKT HMAC ID 2 and the HMAC-SHA-256-128 with the
// MS-OTK over the whole message (PKT HMAC zeroed).
const goldenSecMapReply = "220000010102030405060708000005a001101000000000010a0100000164ff0000050001c0000201" +
	"01000000" + goldenEIDAD + "001400022ac5ab77b91610ba63c249dc398775b9"

func goldenEIDAuth(t *testing.T) EIDAuth {
	a := EIDAuth{KDF: SecKDFSHA256, HMAC: SecHMACSHA256128,
		Records: []EIDRecord{{MaskLen: 16, EID: IPAddress(netip.MustParseAddr("10.1.0.0"))}}}
	if err := SignEIDAuth(&a, secITROTK[:]); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestECMAuthGolden(t *testing.T) {
	itr := ECMAuth{Type: ECMADLispSec, HMAC: SecHMACSHA256128, EID: EIDAuth{Short: true, KDF: SecKDFSHA256}}
	if err := WrapOTK(&itr, SecWrapAES128HKDF, secITROTK, []byte("mr-key"), secNonce); err != nil {
		t.Fatal(err)
	}
	msOTK, err := DeriveMSOTK(SecKDFSHA256, secITROTK, secNonce)
	if err != nil {
		t.Fatal(err)
	}
	ms := ECMAuth{Type: ECMADLispSec, HMAC: SecHMACSHA256128, EID: goldenEIDAuth(t)}
	if err := WrapOTK(&ms, SecWrapAES128HKDF, msOTK, []byte("site-key"), secNonce); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		a    *ECMAuth
		want string
	}{{"ITR", &itr, goldenITRECMAD}, {"Map-Server", &ms, goldenMSECMAD}} {
		// Inside a whole ECM: S bit, the data, then the unchanged inner packet.
		e := sampleECM4()
		e.Security, e.Auth = true, *c.a
		b, err := e.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte{0x89, 0, 0, 0}, unhex(t, c.want)...)
		want = append(want, goldenECM4[4:]...)
		if !bytes.Equal(b, want) || len(b) != e.Len() {
			t.Fatalf("%s ECM\n got %x\nwant %x", c.name, b, want)
		}
		var p ECM
		if err := p.Parse(b); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !p.Security || !p.ChecksumsOK() || !bytes.Equal(p.Message, ecmInner4) || p.Auth.HMAC != SecHMACSHA256128 ||
			p.Auth.Wrap != SecWrapAES128HKDF || p.Auth.EID.KDF != SecKDFSHA256 || p.Auth.EID.Short != c.a.EID.Short {
			t.Fatalf("%s: parsed %+v", c.name, p)
		}
	}
	// The ETR recovers the MS-OTK and checks nothing else; the EID-AD it
	// copies verifies with the ITR-OTK only.
	var p ECM
	b, _ := (&ECM{Security: true, Auth: ms, Src: sampleECM4().Src, Dst: sampleECM4().Dst, Message: ecmInner4}).Append(nil)
	if err := p.Parse(b); err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapOTK(&p.Auth, []byte("site-key"), secNonce)
	if err != nil || got != msOTK {
		t.Fatalf("ETR unwrap %x (%v)", got, err)
	}
	if err := VerifyEIDAuth(&p.Auth.EID, secITROTK[:]); err != nil {
		t.Fatalf("EID-AD: %v", err)
	}
	if err := VerifyEIDAuth(&p.Auth.EID, msOTK[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("EID-AD verifies with the MS-OTK: %v", err)
	}
}

func goldenSecReply(t *testing.T) *MapReply {
	m := &MapReply{Security: true, Nonce: secNonce, Records: []Record{{
		TTL: 1440, MaskLen: 16, Authoritative: true, EID: IPAddress(netip.MustParseAddr("10.1.0.0")),
		Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true,
			Address: IPAddress(netip.MustParseAddr("192.0.2.1"))}},
	}}}
	m.Auth = MapReplyAuth{Type: MapReplyADLispSec, EID: goldenEIDAuth(t), PKTHMAC: SecHMACSHA256128,
		PKTMAC: make([]byte, SecHMACSHA256128.Size())}
	return m
}

func TestSecMapReplyGolden(t *testing.T) {
	msOTK, _ := DeriveMSOTK(SecKDFSHA256, secITROTK, secNonce)
	m := goldenSecReply(t)
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := SignMapReply(b, m.Auth.PKTHMAC, msOTK[:]); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, goldenSecMapReply); !bytes.Equal(b, want) || len(b) != m.Len() {
		t.Fatalf("Map-Reply\n got %x\nwant %x", b, want)
	}
	var p MapReply
	if err := p.Parse(b); err != nil {
		t.Fatal(err)
	}
	if err := VerifyMapReply(b, &p, msOTK[:]); err != nil {
		t.Fatalf("PKT-AD: %v", err)
	}
	if err := VerifyEIDAuth(&p.Auth.EID, secITROTK[:]); err != nil {
		t.Fatalf("EID-AD: %v", err)
	}
	if len(p.Auth.EID.Records) != 1 || p.Auth.EID.Records[0].MaskLen != 16 {
		t.Fatalf("EID-AD records %+v", p.Auth.EID.Records)
	}
}

// goldenSecMapReplySHA1 is goldenSecMapReply with HMAC-SHA-1-96 (EID and
// PKT HMAC ID 1, 12 bytes each) and the MS-OTK from HKDF-SHA1 (KDF ID 1).
const goldenSecMapReplySHA1 = "220000010102030405060708000005a001101000000000010a0100000164ff0000050001c0000201" +
	"01000000" + "001c000101000001001000010a01000091fe49079a22dd44ff39b47d" + "00100001f7367c1bf3a9a3664abe43f8"

func TestSecMapReplySHA1Golden(t *testing.T) {
	msOTK, _ := DeriveMSOTK(SecKDFSHA1, secITROTK, secNonce)
	m := goldenSecReply(t)
	m.Auth.EID = EIDAuth{KDF: SecKDFSHA1, HMAC: SecHMACSHA1_96,
		Records: []EIDRecord{{MaskLen: 16, EID: IPAddress(netip.MustParseAddr("10.1.0.0"))}}}
	if err := SignEIDAuth(&m.Auth.EID, secITROTK[:]); err != nil {
		t.Fatal(err)
	}
	m.Auth.PKTHMAC, m.Auth.PKTMAC = SecHMACSHA1_96, make([]byte, 12)
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := SignMapReply(b, SecHMACSHA1_96, msOTK[:]); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, goldenSecMapReplySHA1); !bytes.Equal(b, want) {
		t.Fatalf("Map-Reply\n got %x\nwant %x", b, want)
	}
	var p MapReply
	if err := p.Parse(b); err != nil {
		t.Fatal(err)
	}
	if err := VerifyMapReply(b, &p, msOTK[:]); err != nil {
		t.Fatal(err)
	}
	if err := VerifyEIDAuth(&p.Auth.EID, secITROTK[:]); err != nil {
		t.Fatal(err)
	}
}
