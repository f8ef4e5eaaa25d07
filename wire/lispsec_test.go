package wire

import (
	"errors"
	"testing"
)

// goldenSecECM returns the Map-Server's LISP-SEC ECM of the golden vectors.
func goldenSecECM(t testing.TB) []byte {
	b := append([]byte{0x89, 0, 0, 0}, unhex(t, goldenMSECMAD)...)
	return append(b, goldenECM4[4:]...)
}

// Every byte of a signed Map-Reply is covered: flipping any bit fails the
// PKT-AD (or the parse), and flipping one inside the EID-AD also fails the
// EID-AD check with the ITR-OTK.
func TestSecMapReplyTampered(t *testing.T) {
	msOTK, _ := DeriveMSOTK(SecKDFSHA256, secITROTK, secNonce)
	good := unhex(t, goldenSecMapReply)
	eidStart := len(good) - 20 - 32
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x01
		var m MapReply
		if m.Parse(b) != nil {
			continue
		}
		if err := VerifyMapReply(b, &m, msOTK[:]); !errors.Is(err, ErrAuth) {
			t.Fatalf("byte %d flipped: PKT-AD %v", i, err)
		}
		if i >= eidStart+0 && i < eidStart+32 && m.Security && !m.Auth.EID.Short {
			if err := VerifyEIDAuth(&m.Auth.EID, secITROTK[:]); err == nil {
				t.Fatalf("byte %d flipped: EID-AD verifies", i)
			}
		}
	}
	var m MapReply
	if err := m.Parse(good); err != nil {
		t.Fatal(err)
	}
	// Wrong keys: the ITR-OTK does not sign the packet, the MS-OTK does not
	// sign the EID-AD, another ITR-OTK signs neither.
	other := secITROTK
	other[0] ^= 0xff
	otherMS, _ := DeriveMSOTK(SecKDFSHA256, other, secNonce)
	if err := VerifyMapReply(good, &m, secITROTK[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("PKT-AD with the ITR-OTK: %v", err)
	}
	if err := VerifyMapReply(good, &m, otherMS[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("PKT-AD with another MS-OTK: %v", err)
	}
	if err := VerifyEIDAuth(&m.Auth.EID, other[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("EID-AD with another ITR-OTK: %v", err)
	}
	// An unknown or mismatched HMAC ID fails rather than being skipped.
	m.Auth.PKTHMAC = 7
	if err := VerifyMapReply(good, &m, msOTK[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("unknown PKT HMAC ID: %v", err)
	}
	m.Auth.PKTHMAC = SecHMACSHA1_96
	if err := VerifyMapReply(good, &m, msOTK[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("PKT HMAC ID with another length: %v", err)
	}
	m.Security = false
	m.Auth.PKTHMAC = SecHMACSHA256128
	if err := VerifyMapReply(good, &m, msOTK[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("reply without the S bit: %v", err)
	}
	short := EIDAuth{Short: true, KDF: SecKDFSHA256}
	if err := VerifyEIDAuth(&short, secITROTK[:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("short EID-AD: %v", err)
	}
	if err := SignEIDAuth(&short, secITROTK[:]); !errors.Is(err, ErrBadValue) {
		t.Fatalf("signing a short EID-AD: %v", err)
	}
	if err := SignMapReply(good[:4], SecHMACSHA256128, msOTK[:]); !errors.Is(err, ErrBadValue) {
		t.Fatalf("signing 4 bytes: %v", err)
	}
}

func TestSecParseErrors(t *testing.T) {
	reply := unhex(t, goldenSecMapReply)
	ecm := goldenSecECM(t)
	recEnd := len(reply) - 20 - 32 - 4 // start of the MR AD
	patch := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = v
		return c
	}
	for _, c := range []struct {
		name string
		b    []byte
		ecm  bool
		want error
	}{
		{"MR AD type 0", patch(reply, recEnd, 0), false, ErrBadValue},
		{"EID-AD length 5", patch(reply, recEnd+5, 5), false, ErrBadLength},
		{"EID-AD length past the end", patch(reply, recEnd+4, 0xff), false, ErrTruncated},
		{"EID-AD 200 records", patch(reply, recEnd+8, 200), false, ErrTruncated},
		{"PKT-AD length 2", patch(reply, len(reply)-19, 2), false, ErrBadLength},
		{"PKT-AD length past the end", patch(reply, len(reply)-19, 21), false, ErrTruncated},
		{"PKT-AD short by one", patch(reply, len(reply)-19, 19), false, ErrBadLength},
		{"no PKT-AD", reply[:len(reply)-20], false, ErrTruncated},
		{"ECM AD type 2", patch(ecm, 4, 2), true, ErrBadValue},
		{"OTK length 16", patch(ecm, 9, 16), true, ErrBadLength},
		{"ECM EID-AD length 2", patch(ecm, 37, 2), true, ErrBadLength},
		{"ECM truncated in the OTK", ecm[:20], true, ErrTruncated},
	} {
		var err error
		if c.ecm {
			var e ECM
			err = e.Parse(c.b)
		} else {
			var m MapReply
			err = m.Parse(c.b)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	checkTruncations[MapReply](t, reply)
	for n := range ecm {
		var e ECM
		if e.Parse(ecm[:n]) == nil {
			t.Fatalf("ECM truncated to %d bytes parses", n)
		}
	}
}

func TestSecIDNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{SecHMACSHA256128.String(), "hmac-sha256-128"}, {SecHMACSHA1_96.String(), "hmac-sha1-96"},
		{SecHMACNone.String(), "none"}, {SecHMAC(9).String(), "hmac-9"},
		{SecKDFSHA256.String(), "hkdf-sha256-128"}, {SecKDFSHA1.String(), "hkdf-sha1-128"},
		{SecKDFNone.String(), "none"}, {SecKDF(9).String(), "kdf-9"},
		{SecWrapAES128HKDF.String(), "aes-key-wrap-128+hkdf-sha256"}, {SecWrapNullKey128.String(), "null-key-wrap-128"},
		{SecKeyWrap(9).String(), "wrap-9"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

func TestSecParseAllocs(t *testing.T) {
	var e ECM
	b := goldenSecECM(t)
	if n := testing.AllocsPerRun(100, func() {
		if err := e.Parse(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ECM.Parse with LISP-SEC data allocates %v times", n)
	}
}

// A parsed EID-AD is re-sent byte for byte (its Raw), also when its fields
// were read from a non-canonical encoding, so its HMAC still verifies.
func TestEIDAuthForwardedVerbatim(t *testing.T) {
	good := unhex(t, goldenEIDAD)
	var a EIDAuth
	if _, err := a.Parse(good); err != nil {
		t.Fatal(err)
	}
	a.Records[0].MaskLen = 8 // ignored while Raw is set
	b, err := a.Append(nil)
	if err != nil || string(b) != string(good) || a.Len() != len(good) {
		t.Fatalf("forwarded %x (%v)", b, err)
	}
	a.Raw = nil
	if b, _ = a.Append(nil); string(b) == string(good) {
		t.Fatal("cleared Raw: the changed fields are not encoded")
	}
}
