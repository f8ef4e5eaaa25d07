package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// msg2Codec is the shape of every message struct of this package.
type msg2Codec interface {
	Append(b []byte) ([]byte, error)
	Len() int
	Parse(b []byte) error
}

// msg2Golden checks m against its hand-written encoding: Append and Len
// match golden, golden parses into parsed (reused after a first parse)
// and re-encodes identically, the parsed struct equals m when same is set,
// every truncated prefix fails with ErrTruncated, and a trailing byte fails.
func msg2Golden(t *testing.T, m, parsed msg2Codec, golden []byte, same bool) {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if !bytes.Equal(b, golden) {
		t.Fatalf("encoding\n got %x\nwant %x", b, golden)
	}
	if m.Len() != len(golden) {
		t.Fatalf("Len %d, want %d", m.Len(), len(golden))
	}
	// Append must append, not overwrite.
	pre := []byte{0xaa, 0xbb}
	b2, err := m.Append(pre)
	if err != nil || !bytes.Equal(b2[:2], []byte{0xaa, 0xbb}) || !bytes.Equal(b2[2:], golden) {
		t.Fatalf("Append to a non-empty slice: %x %v", b2, err)
	}
	for range 2 { // the second round parses into a struct already used
		if err := parsed.Parse(golden); err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if same && !reflect.DeepEqual(parsed, m) {
			t.Fatalf("round trip\n got %+v\nwant %+v", parsed, m)
		}
		b, err = parsed.Append(nil)
		if err != nil || !bytes.Equal(b, golden) {
			t.Fatalf("re-encoding: %v\n got %x\nwant %x", err, b, golden)
		}
	}
	for i := range golden {
		if err := parsed.Parse(golden[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d/%d bytes: err %v, want ErrTruncated", i, len(golden), err)
		}
	}
	if err := parsed.Parse(append(append([]byte(nil), golden...), 0)); err == nil {
		t.Fatalf("trailing byte accepted")
	}
}

// msg2Patched returns a copy of b with b[i] = v.
func msg2Patched(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}

// msg2FuzzStable is the fuzz invariant: whatever parses re-encodes, with
// Len equal to the encoded length, and the encoding parses back into the
// same encoding.
func msg2FuzzStable(t *testing.T, data []byte, a, b msg2Codec) {
	if a.Parse(data) != nil {
		return
	}
	enc, err := a.Append(nil)
	if err != nil {
		t.Fatalf("parsed message does not re-encode: %v\ninput %x", err, data)
	}
	if len(enc) != a.Len() {
		t.Fatalf("Len %d, encoded %d\ninput %x", a.Len(), len(enc), data)
	}
	if err := b.Parse(enc); err != nil {
		t.Fatalf("re-encoding does not parse: %v\ninput %x\nenc %x", err, data, enc)
	}
	enc2, err := b.Append(nil)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("parse/append not stable: %v\n1st %x\n2nd %x", err, enc, enc2)
	}
}

// Map-Referral (RFC 8111 §6.4), nonce 0102030405060708, two records: (1)
// MS-REFERRAL for 10.1.0.0/16, TTL 1440, A set, two Map-Servers 192.0.2.1
// and 192.0.2.2 (priority 1, weight 50, M-priority 255, R); (2)
// NOT-AUTHORITATIVE for 2001:db8::1/128, TTL 0, I set, no locators.
//
//	0000  60 00 00 02 01 02 03 04  05 06 07 08 00 00 05 a0   type 6, count 2, nonce, TTL
//	0010  02 10 30 00 00 00 00 01  0a 01 00 00 01 32 ff 00   2 refs, /16, ACT=1 A, AFI 1, EID, loc
//	0020  00 01 00 01 c0 00 02 01  01 32 ff 00 00 01 00 01
//	0030  c0 00 02 02 00 00 00 00  00 80 a8 00 00 00 00 02   rec 2: TTL 0, /128, ACT=5 I, AFI 2
//	0040  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 01
var goldenMapReferral = []byte{
	0x60, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x05, 0xa0,
	0x02, 0x10, 0x30, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x00, 0x01, 0x32, 0xff, 0x00,
	0x00, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01, 0x01, 0x32, 0xff, 0x00, 0x00, 0x01, 0x00, 0x01,
	0xc0, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0xa8, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
}

func sampleMapReferral() *MapReferral {
	ms := func(a string) Locator {
		return Locator{Priority: 1, Weight: 50, MPriority: 255, Reachable: true, Address: IPAddress(netip.MustParseAddr(a))}
	}
	return &MapReferral{
		Nonce: Nonce{1, 2, 3, 4, 5, 6, 7, 8},
		Records: []Record{
			{TTL: 1440, MaskLen: 16, Action: Action(ReferralMS), Authoritative: true,
				EID: IPAddress(netip.MustParseAddr("10.1.0.0")), Locators: []Locator{ms("192.0.2.1"), ms("192.0.2.2")}},
			{TTL: 0, MaskLen: 128, Action: Action(ReferralNotAuthoritative), Incomplete: true,
				EID: IPAddress(netip.MustParseAddr("2001:db8::1"))},
		},
	}
}

func TestMapReferralGolden(t *testing.T) {
	m := sampleMapReferral()
	var got MapReferral
	msg2Golden(t, m, &got, goldenMapReferral, true)
	if ReferralType(got.Records[0].Action) != ReferralMS || !got.Records[1].Incomplete ||
		ReferralType(got.Records[1].Action).String() != "NOT-AUTHORITATIVE" {
		t.Fatalf("referral fields: %+v", got.Records)
	}
	if typ, _ := PeekType(goldenMapReferral); typ != TypeMapReferral {
		t.Fatalf("PeekType %v", typ)
	}
}

func TestMapReferralBad(t *testing.T) {
	var m MapReferral
	// Record count 255 with two records present.
	if err := m.Parse(msg2Patched(goldenMapReferral, 3, 255)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("count 255: %v", err)
	}
	// Referral count (locators) 255 in the first record.
	if err := m.Parse(msg2Patched(goldenMapReferral, 16, 255)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("referral count 255: %v", err)
	}
	// Referral type 6 is undefined.
	if err := m.Parse(msg2Patched(goldenMapReferral, 18, 0xc0|0x10)); !errors.Is(err, ErrBadValue) {
		t.Fatalf("referral type 6: %v", err)
	}
	// SigCnt 1 on the first record: what follows is the second record,
	// whose bytes read as a sig section announcing more bytes than there are.
	if err := m.Parse(msg2Patched(goldenMapReferral, 20, 0x10)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("SigCnt 1: %v", err)
	}
	// Wrong message type.
	if err := m.Parse(msg2Patched(goldenMapReferral, 0, 0x20)); !errors.Is(err, ErrBadType) {
		t.Fatalf("type 2: %v", err)
	}
	// Append refuses what Parse refuses.
	s := sampleMapReferral()
	s.Records[0].Action = 7
	if _, err := s.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("append referral type 7: %v", err)
	}
	s = sampleMapReferral()
	s.Records = make([]Record, 256)
	if _, err := s.Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("append 256 records: %v", err)
	}
}

func FuzzMapReferral(f *testing.F) {
	f.Add(goldenMapReferral)
	signed, _ := hex.DecodeString(goldenSignedReferralHex)
	f.Add(signed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapReferral
		msg2FuzzStable(t, data, &a, &b)
	})
}

func BenchmarkMapReferralParse(b *testing.B) {
	var m MapReferral
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Parse(goldenMapReferral); err != nil {
			b.Fatal(err)
		}
	}
	msg2ReportPerMsg(b)
}

// msg2ReportPerMsg reports the time per message and the message rate.
func msg2ReportPerMsg(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns, "ns/msg")
	b.ReportMetric(1e3/ns, "Mmsg/s")
}
