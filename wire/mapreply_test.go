package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

// Map-Reply with P and E set and two records (RFC 9301 §5.4):
//
//	0000  2c 00 00 02 01 02 03 04  05 06 07 08 00 00 05 a0
//	0010  02 10 10 00 00 05 40 03  00 00 02 00 00 0a 00 00
//	0020  00 07 00 01 0a 01 00 00  01 32 ff 00 00 01 00 01
//	0030  c0 00 02 01 01 32 ff 00  00 03 00 02 20 01 0d b8
//	0040  00 00 00 00 00 00 00 00  00 00 00 02 00 00 00 0f
//	0050  01 30 00 00 00 00 00 02  20 01 0d b8 00 01 00 00
//	0060  00 00 00 00 00 00 00 00  02 64 ff 00 00 01 00 01
//	0070  c6 33 64 07
//
// 2c: type 2 with P (0x8) and E (0x4); 02: two records; nonce 01..08.
// Record 1: TTL 1440, 2 locators, mask 16, A bit, map-version 5, EID LCAF
// IID 7 10.1.0.0; locator p1 w50 mp255 mw0 R 192.0.2.1; locator p1 w50 mp255
// mw0 p|R 2001:db8::2. Record 2: TTL 15, 1 locator, mask 48, EID AFI 2
// 2001:db8:1::; locator p2 w100 mp255 mw0 R 198.51.100.7.
var goldenMapReply = []byte{
	0x2c, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x05, 0xa0,
	0x02, 0x10, 0x10, 0x00, 0x00, 0x05, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x0a, 0x00, 0x00,
	0x00, 0x07, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x00, 0x01, 0x32, 0xff, 0x00, 0x00, 0x01, 0x00, 0x01,
	0xc0, 0x00, 0x02, 0x01, 0x01, 0x32, 0xff, 0x00, 0x00, 0x03, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0f,
	0x01, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x64, 0xff, 0x00, 0x00, 0x01, 0x00, 0x01,
	0xc6, 0x33, 0x64, 0x07,
}

func goldenMapReplyMsg() *MapReply {
	return &MapReply{
		Probe: true, EchoNonce: true,
		Nonce: Nonce{1, 2, 3, 4, 5, 6, 7, 8},
		Records: []Record{
			{
				TTL: 1440, MaskLen: 16, Authoritative: true, MapVersion: 5,
				EID: IIDAddress(7, netip.MustParseAddr("10.1.0.0")),
				Locators: []Locator{
					{Priority: 1, Weight: 50, MPriority: 255, Reachable: true,
						Address: IPAddress(netip.MustParseAddr("192.0.2.1"))},
					{Priority: 1, Weight: 50, MPriority: 255, Probed: true, Reachable: true,
						Address: IPAddress(netip.MustParseAddr("2001:db8::2"))},
				},
			},
			{
				TTL: 15, MaskLen: 48,
				EID: IPAddress(netip.MustParseAddr("2001:db8:1::")),
				Locators: []Locator{{Priority: 2, Weight: 100, MPriority: 255, Reachable: true,
					Address: IPAddress(netip.MustParseAddr("198.51.100.7"))}},
			},
		},
	}
}

func TestMapReplyGolden(t *testing.T) {
	checkGolden(t, goldenMapReplyMsg(), goldenMapReply)
	checkTruncations[MapReply](t, goldenMapReply)
	// The S bit is 0x02 in the first byte (RFC 9301 §5.4).
	m := goldenMapReplyMsg()
	m.Probe, m.EchoNonce, m.Security = false, false, true
	if _, err := m.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("S bit without LISP-SEC data: %v", err)
	}
	m.Auth = sampleReplyAuth()
	b, err := m.Append(nil)
	if err != nil || b[0] != 0x22 {
		t.Fatalf("S bit: %v %x", err, b[:4])
	}
	// Without the S bit the same trailing bytes are refused.
	b[0] = 0x20
	if err := m.Parse(b); !errors.Is(err, ErrBadLength) {
		t.Fatalf("LISP-SEC data without the S bit: %v", err)
	}
}

// sampleReplyAuth is LISP-SEC Map-Reply authentication data with arbitrary
// HMACs (lispsec_golden_test.go has signed ones).
func sampleReplyAuth() MapReplyAuth {
	return MapReplyAuth{Type: MapReplyADLispSec, PKTHMAC: SecHMACSHA256128, PKTMAC: bytes.Repeat([]byte{0xab}, 16),
		EID: EIDAuth{KDF: SecKDFSHA256, HMAC: SecHMACSHA256128, MAC: bytes.Repeat([]byte{0xcd}, 16),
			Records: []EIDRecord{{MaskLen: 8, EID: IPAddress(netip.MustParseAddr("10.0.0.0"))}}}}
}

func TestMapReplyRoundTrip(t *testing.T) {
	for _, e := range testEIDs {
		t.Run(e.name, func(t *testing.T) {
			m := &MapReply{
				Security: true,
				Auth:     sampleReplyAuth(),
				Nonce:    Nonce{0xff, 0, 0xff, 0, 1, 2, 3, 4},
				Records: []Record{
					{TTL: 1, MaskLen: e.masklen, MapVersion: 0xfff, EID: e.eid, Locators: []Locator{
						{Priority: 255, Weight: 0, MPriority: 1, MWeight: 100, Local: true,
							Address: IPAddress(netip.MustParseAddr("2001:db8::99"))},
						{Priority: 3, Weight: 7, Unused: 0x1fff, Reachable: true,
							Address: IPAddress(netip.MustParseAddr("203.0.113.200"))},
					}},
					// A negative Map-Reply record: no locators, an action.
					{TTL: 0, MaskLen: e.masklen, Action: ActionNativelyForward, EID: e.eid},
				},
			}
			// Parse sets Raw to the encoded EID-AD; Append ignores it.
			m.Auth.EID.Raw, _ = m.Auth.EID.Append(nil)
			b := checkRoundTrip(t, m, goldenMapReply)
			checkTruncations[MapReply](t, b)
		})
	}
	// No records at all is a valid (if useless) Map-Reply.
	checkRoundTrip(t, &MapReply{Nonce: Nonce{1}}, goldenMapReply)
}

func TestMapReplyBadInput(t *testing.T) {
	var m MapReply
	for _, typ := range []byte{0x10, 0x30, 0x40, 0x50, 0x60} {
		b := append([]byte(nil), goldenMapReply...)
		b[0] = typ
		if err := m.Parse(b); !errors.Is(err, ErrBadType) {
			t.Fatalf("type byte %02x: %v, want ErrBadType", typ, err)
		}
	}
	one := oneRecordMapReply()
	b := append([]byte(nil), one...)
	b[3] = 255 // record count 255, one record present
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("record count 255: %v", err)
	}
	b = append([]byte(nil), goldenMapReply...)
	b[3] = 3 // three records announced, two present
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("record count 3 of 2: %v", err)
	}
	b = append([]byte(nil), goldenMapReply...)
	b[16] = 200 // locator count 200 in record 1
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("locator count 200: %v", err)
	}
	if _, err := (&MapReply{Records: make([]Record, 256)}).Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("256 records: %v", err)
	}
}

// oneRecordMapReply is a Map-Reply with one record for an IID-wrapped IPv4
// EID and one IPv4 locator, the common answer to an ITR.
func oneRecordMapReply() []byte {
	b, err := oneRecordMapReplyMsg().Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func oneRecordMapReplyMsg() *MapReply {
	return &MapReply{
		Nonce: Nonce{9, 8, 7, 6, 5, 4, 3, 2},
		Records: []Record{{
			TTL: 1440, MaskLen: 24, Authoritative: true,
			EID: IIDAddress(100, netip.MustParseAddr("10.2.0.0")),
			Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true,
				Address: IPAddress(netip.MustParseAddr("192.0.2.77"))}},
		}},
	}
}

func TestMapReplyParseAllocs(t *testing.T) {
	b := oneRecordMapReply()
	var m MapReply
	if err := m.Parse(goldenMapReply); err != nil { // warm up with a bigger message
		t.Fatal(err)
	}
	var err error
	allocs := testing.AllocsPerRun(200, func() { err = m.Parse(b) })
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("MapReply.Parse into a reused struct: %v allocations, want 0", allocs)
	}
	if len(m.Records) != 1 || len(m.Records[0].Locators) != 1 {
		t.Fatalf("reused struct: %+v", m)
	}
}

func mapReplySeeds() [][]byte {
	m := goldenMapReplyMsg()
	m.Records[1].EID = MACAddress([6]byte{0, 1, 2, 3, 4, 5})
	m.Records[1].Locators = nil
	m.Records[1].Action = ActionSendMapRequest
	b, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	sec, err := hex.DecodeString(goldenSecMapReply)
	if err != nil {
		panic(err)
	}
	return [][]byte{goldenMapReply, oneRecordMapReply(), b, sec}
}

func FuzzMapReply(f *testing.F) {
	for _, s := range mapReplySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStable[MapReply](t, data, goldenMapReply)
	})
}

func TestMapReplySeedCorpus(t *testing.T) {
	seeds := mapReplySeeds()
	for _, s := range seeds {
		var m MapReply
		if err := m.Parse(s); err != nil {
			t.Fatalf("seed does not parse: %v", err)
		}
	}
	checkSeedCorpus(t, "FuzzMapReply", seeds)
}
