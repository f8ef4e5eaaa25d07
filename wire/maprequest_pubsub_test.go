package wire

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// lispersSubscribe is lispers.net's subscription Map-Request
// (interop/lispers/mreq_subscribe.hex, decoded fields in its
// expected.json): I bit, one EID record with the N bit for 10.2.0.0/16 in
// IID 1000, ITR-RLOC 192.0.2.1, and a 16-byte xTR-ID with no site-ID.
const lispersSubscribe = "10100001887766554433221100000001c00002018010400300000200000a000003e800010a0200000123456789abcdef0011223344556677"

// TestMapRequestLispersSubscribe parses lispers.net's vector into the
// fields its expected.json lists and re-encodes it byte for byte.
func TestMapRequestLispersSubscribe(t *testing.T) {
	raw, err := hex.DecodeString(lispersSubscribe)
	if err != nil {
		t.Fatal(err)
	}
	var m MapRequest
	if err := m.Parse(raw); err != nil {
		t.Fatalf("lispers.net subscription Map-Request: %v", err)
	}
	if !m.XTRIDPresent || !m.NoSiteID || m.SiteID != 0 {
		t.Fatalf("trailer: I=%v short=%v site=%d", m.XTRIDPresent, m.NoSiteID, m.SiteID)
	}
	if got := m.XTRID.String(); got != "0123456789abcdef0011223344556677" {
		t.Fatalf("xTR-ID %s", got)
	}
	if hex.EncodeToString(m.Nonce[:]) != "8877665544332211" {
		t.Fatalf("nonce %x", m.Nonce)
	}
	if len(m.ITRRLOCs) != 1 || m.ITRRLOCs[0].IP != netip.MustParseAddr("192.0.2.1") || !m.SourceEID.IsZero() {
		t.Fatalf("ITR-RLOCs %v source %v", m.ITRRLOCs, m.SourceEID)
	}
	if len(m.Records) != 1 || !m.Records[0].Notify {
		t.Fatalf("records %+v: want one with the N bit", m.Records)
	}
	iid, p, ok := m.Records[0].Prefix()
	if !ok || iid != 1000 || p != netip.MustParsePrefix("10.2.0.0/16") {
		t.Fatalf("record prefix %d %v %v", iid, p, ok)
	}
	b, err := m.Append(nil)
	if err != nil || hex.EncodeToString(b) != lispersSubscribe {
		t.Fatalf("re-encoded %x, %v\nwant %s", b, err, lispersSubscribe)
	}
	checkTrailerTruncations(t, raw, false)
}

// checkTrailerTruncations is checkTruncations for a message whose xTR-ID
// trailer is told apart by length: every proper prefix fails to parse but
// the one that ends 8 bytes early on a 24-byte trailer (which is the
// 16-byte form, full24 set), and a trailing byte is refused.
func checkTrailerTruncations(t *testing.T, b []byte, full24 bool) {
	t.Helper()
	for i := range b {
		var m MapRequest
		err := m.Parse(b[:i])
		if full24 && i == len(b)-8 {
			if err != nil || !m.NoSiteID {
				t.Fatalf("prefix without the site-ID: %v, short form %v", err, m.NoSiteID)
			}
			continue
		}
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed", i, len(b))
		}
	}
	var m MapRequest
	if err := m.Parse(append(append([]byte(nil), b...), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// subscribeRequest is a hand-written RFC 9437 §4 subscription: I bit, N bit
// on the second of two records, a 24-byte xTR-ID + site-ID trailer.
func subscribeRequest() ([]byte, *MapRequest) {
	raw, _ := hex.DecodeString("" +
		"10100102" + // type 1, I (bit 11), IRC 1, 2 records
		"0102030405060708" + // nonce
		"0000" + // source EID AFI 0
		"0001c0000201" + // ITR-RLOC 192.0.2.1
		"000220010db8000000000000000000000001" + // ITR-RLOC 2001:db8::1
		"0018" + "00010a010100" + // record: no N, /24, 10.1.1.0
		"8010" + "00010a020000" + // record: N, /16, 10.2.0.0
		"00112233445566778899aabbccddeeff" + // xTR-ID
		"0000000000000007") // site-ID 7
	m := &MapRequest{
		XTRIDPresent: true,
		Nonce:        Nonce{1, 2, 3, 4, 5, 6, 7, 8},
		ITRRLOCs:     []Address{IPAddress(netip.MustParseAddr("192.0.2.1")), IPAddress(netip.MustParseAddr("2001:db8::1"))},
		Records: []EIDRecord{
			{MaskLen: 24, EID: IPAddress(netip.MustParseAddr("10.1.1.0"))},
			{Notify: true, MaskLen: 16, EID: IPAddress(netip.MustParseAddr("10.2.0.0"))},
		},
		XTRID:  XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
		SiteID: 7,
	}
	return raw, m
}

// TestMapRequestSubscribeGolden checks the N bit (top bit of the record's
// reserved byte) and the RFC's 24-byte trailer against bytes written by
// hand, both ways, and the lispers.net 16-byte form of the same message.
func TestMapRequestSubscribeGolden(t *testing.T) {
	raw, want := subscribeRequest()
	checkGolden(t, want, raw)
	checkTrailerTruncations(t, raw, true)

	// The same message with the 16-byte trailer: the site-ID is dropped.
	short := append([]byte(nil), raw[:len(raw)-8]...)
	var m MapRequest
	if err := m.Parse(short); err != nil {
		t.Fatalf("16-byte trailer: %v", err)
	}
	want.SiteID, want.NoSiteID = 0, true
	if !reflect.DeepEqual(&m, want) {
		t.Fatalf("16-byte trailer:\n got %+v\nwant %+v", m, *want)
	}
	checkGolden(t, want, short)

	// Neither 16 nor 24 bytes: refused.
	for _, n := range []int{1, 8, 15, 17, 23} {
		var m MapRequest
		if err := m.Parse(raw[:len(raw)-24+n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%d-byte trailer: %v, want ErrTruncated", n, err)
		}
	}
	var m2 MapRequest
	if err := m2.Parse(append(raw[:len(raw):len(raw)], 0)); !errors.Is(err, ErrBadLength) {
		t.Fatalf("25-byte trailer: %v, want ErrBadLength", err)
	}
	// Without the I bit a 16-byte tail is not a trailer.
	noI := append([]byte(nil), short...)
	noI[1] &^= 0x10
	if err := m2.Parse(noI); !errors.Is(err, ErrBadLength) {
		t.Fatalf("16 bytes without the I bit: %v, want ErrBadLength", err)
	}
}

// TestMapRequestReuseClearsPubSub checks that a struct reused for a plain
// request drops the N bit and the short-trailer mark of the last one.
func TestMapRequestReuseClearsPubSub(t *testing.T) {
	raw, _ := hex.DecodeString(lispersSubscribe)
	var m MapRequest
	if err := m.Parse(raw); err != nil {
		t.Fatal(err)
	}
	if err := m.Parse(goldenMapRequest); err != nil {
		t.Fatal(err)
	}
	if m.NoSiteID || m.Records[0].Notify {
		t.Fatalf("stale pub/sub fields after reuse: %+v", m)
	}
}
