package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ctrlMsg is what every control message type in this package implements.
type ctrlMsg interface {
	Append(b []byte) ([]byte, error)
	Len() int
	Parse(b []byte) error
}

// msgPtr ties a message struct type to its pointer, for generic helpers.
type msgPtr[T any] interface {
	*T
	ctrlMsg
}

// checkGolden asserts that m encodes to golden, that Len agrees, and that
// golden parses back into a value deeply equal to m.
func checkGolden[T any, P msgPtr[T]](t *testing.T, m P, golden []byte) {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if !bytes.Equal(b, golden) {
		t.Fatalf("encoding\n got %x\nwant %x", b, golden)
	}
	if m.Len() != len(golden) {
		t.Fatalf("Len %d, want %d", m.Len(), len(golden))
	}
	var got T
	if err := P(&got).Parse(golden); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if !reflect.DeepEqual(&got, (*T)(m)) {
		t.Fatalf("parsed\n got %+v\nwant %+v", got, *m)
	}
}

// checkTruncations asserts that every proper prefix of b fails to parse,
// into a fresh struct and into one that has parsed b before.
func checkTruncations[T any, P msgPtr[T]](t *testing.T, b []byte) {
	t.Helper()
	var reused T
	if err := P(&reused).Parse(b); err != nil {
		t.Fatalf("whole message: %v", err)
	}
	for i := range b {
		var fresh T
		if err := P(&fresh).Parse(b[:i]); err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed", i, len(b))
		}
		if err := P(&reused).Parse(b[:i]); err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed into a reused struct", i, len(b))
		}
	}
	// Trailing bytes are refused too.
	var fresh T
	if err := P(&fresh).Parse(append(append([]byte(nil), b...), 0)); !errors.Is(err, ErrBadLength) {
		t.Fatalf("trailing byte: %v, want ErrBadLength", err)
	}
}

// checkRoundTrip encodes m, parses the bytes into a fresh struct and into a
// struct reused from other, and checks that both equal m and re-encode to
// the same bytes.
func checkRoundTrip[T any, P msgPtr[T]](t *testing.T, m P, other []byte) []byte {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if len(b) != m.Len() {
		t.Fatalf("Len %d, encoded %d", m.Len(), len(b))
	}
	var got T
	if err := P(&got).Parse(b); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if !reflect.DeepEqual(&got, (*T)(m)) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, *m)
	}
	var reused T
	if other != nil {
		if err := P(&reused).Parse(other); err != nil {
			t.Fatalf("parse other: %v", err)
		}
	}
	if err := P(&reused).Parse(b); err != nil {
		t.Fatalf("parse into reused struct: %v", err)
	}
	b2, err := P(&reused).Append(nil)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("reused struct re-encodes differently (%v)\n got %x\nwant %x", err, b2, b)
	}
	// Append after existing bytes leaves them alone.
	prefix := []byte{0xaa, 0xbb}
	b3, err := m.Append(prefix)
	if err != nil || !bytes.Equal(b3[:2], prefix) || !bytes.Equal(b3[2:], b) {
		t.Fatalf("append after prefix: %v %x", err, b3)
	}
	return b
}

// checkStable is the fuzz invariant: whatever parses re-encodes, and the
// encoding parses back to an equal struct that encodes to the same bytes.
// Parsing into a struct that held another message gives the same encoding.
func checkStable[T any, P msgPtr[T]](t *testing.T, data, other []byte) {
	var m1 T
	if P(&m1).Parse(data) != nil {
		return
	}
	b1, err := P(&m1).Append(nil)
	if err != nil {
		t.Fatalf("parsed message does not encode: %v", err)
	}
	if len(b1) != P(&m1).Len() {
		t.Fatalf("Len %d, encoded %d", P(&m1).Len(), len(b1))
	}
	var m2, m3 T
	if err := P(&m2).Parse(b1); err != nil {
		t.Fatalf("re-encoding does not parse: %v\n%x", err, b1)
	}
	b2, err := P(&m2).Append(nil)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("second encoding differs (%v)\n got %x\nwant %x", err, b2, b1)
	}
	if err := P(&m3).Parse(b2); err != nil || !reflect.DeepEqual(m2, m3) {
		t.Fatalf("second parse differs (%v)\n got %+v\nwant %+v", err, m3, m2)
	}
	var reused T
	if P(&reused).Parse(other) == nil {
		if err := P(&reused).Parse(data); err != nil {
			t.Fatalf("parses fresh but not into a reused struct: %v", err)
		}
		b3, err := P(&reused).Append(nil)
		if err != nil || !bytes.Equal(b1, b3) {
			t.Fatalf("reused struct encodes differently (%v)\n got %x\nwant %x", err, b3, b1)
		}
	}
}

// seedDir is where the committed fuzz seed corpus of target lives.
func seedDir(target string) string { return filepath.Join("testdata", "fuzz", target) }

// checkSeedCorpus asserts that testdata/fuzz/<target>/seed-<i> holds seeds[i]
// in the "go test fuzz v1" format. With RLOC_UPDATE_FUZZ_SEEDS=1 it writes
// the files first.
func checkSeedCorpus(t *testing.T, target string, seeds [][]byte) {
	t.Helper()
	dir := seedDir(target)
	if os.Getenv("RLOC_UPDATE_FUZZ_SEEDS") == "1" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), fuzzFile(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range seeds {
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("seed corpus: %v (regenerate with RLOC_UPDATE_FUZZ_SEEDS=1 go test -run SeedCorpus ./wire/)", err)
		}
		if !bytes.Equal(got, fuzzFile(s)) {
			t.Fatalf("%s is stale (regenerate with RLOC_UPDATE_FUZZ_SEEDS=1 go test -run SeedCorpus ./wire/)", name)
		}
	}
}

// fuzzFile formats one []byte input as a go-fuzz v1 corpus file.
func fuzzFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// testEIDs are the EID kinds every message is round-tripped with.
var testEIDs = []struct {
	name    string
	eid     Address
	masklen uint8
}{
	{"ipv4", IPAddress(netip.MustParseAddr("10.20.0.0")), 16},
	{"ipv6", IPAddress(netip.MustParseAddr("2001:db8:aa::")), 48},
	{"mac16389", MACAddress([6]byte{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}), 48},
	{"mac6", Address{AFI: AFIMAC, MAC: [6]byte{0x00, 0x16, 0x3e, 0x01, 0x02, 0x03}}, 48},
	{"iid-ipv4", IIDAddress(0xffffff, netip.MustParseAddr("192.168.7.0")), 24},
	{"iid-ipv6", IIDAddress(42, netip.MustParseAddr("2001:db8::")), 32},
	{"iid-only", Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: 9, Rsvd2: 24}}, 0},
}

// Map-Request with two ITR-RLOCs (IPv4 and IPv6) and an instance-ID EID
// (RFC 9301 §5.2, RFC 8060 §4.1):
//
//	0000  10 00 01 01 de ad be ef  01 23 45 67 40 03 00 00
//	0010  02 00 00 0a 00 00 00 07  00 01 0a 01 01 01 00 01
//	0020  c0 00 02 01 00 02 20 01  0d b8 00 00 00 00 00 00
//	0030  00 00 00 00 00 01 00 18  40 03 00 00 02 00 00 0a
//	0040  00 00 00 07 00 01 0a 02  00 00
//
// 10: type 1, no flags; 00 01: IRC 1 (two ITR-RLOCs); 01: one record;
// nonce de..67; source EID LCAF (16387) type 2 length 10, IID 7, AFI 1
// 10.1.1.1; ITR-RLOC AFI 1 192.0.2.1; ITR-RLOC AFI 2 2001:db8::1; record:
// reserved 00, mask-len 24, LCAF IID 7 AFI 1 10.2.0.0.
var goldenMapRequest = []byte{
	0x10, 0x00, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x40, 0x03, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x0a, 0x01, 0x01, 0x01, 0x00, 0x01,
	0xc0, 0x00, 0x02, 0x01, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x18, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x0a,
	0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x0a, 0x02, 0x00, 0x00,
}

func goldenMapRequestMsg() *MapRequest {
	return &MapRequest{
		Nonce:     Nonce{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67},
		SourceEID: IIDAddress(7, netip.MustParseAddr("10.1.1.1")),
		ITRRLOCs: []Address{
			IPAddress(netip.MustParseAddr("192.0.2.1")),
			IPAddress(netip.MustParseAddr("2001:db8::1")),
		},
		Records: []EIDRecord{{MaskLen: 24, EID: IIDAddress(7, netip.MustParseAddr("10.2.0.0"))}},
	}
}

// Map-Request with M, P, S, I and L set, a Map-Reply record and the xTR-ID
// trailer (RFC 9301 §5.2, RFC 9437 §5):
//
//	0000  17 10 40 01 11 22 33 44  55 66 77 88 00 01 0a 00
//	0010  00 01 00 01 c0 00 02 0a  00 20 00 01 0a 00 00 02
//	0020  00 00 05 a0 01 20 10 00  00 00 00 01 0a 00 00 01
//	0030  01 64 ff 00 00 05 00 01  c0 00 02 0a 00 11 22 33
//	0040  44 55 66 77 88 99 aa bb  cc dd ee ff 00 00 00 00
//	0050  00 00 00 05
//
// 17: type 1 with M (0x4), P (0x2), S (0x1); 10: I (bit 11); 40: L (bit 17),
// IRC 0 (one ITR-RLOC); 01: one record; source EID 10.0.0.1; ITR-RLOC
// 192.0.2.10; record 10.0.0.2/32; Map-Reply record: TTL 1440 minutes, one
// locator, mask 32, A bit, EID 10.0.0.1, locator p1 w100 mp255 mw0 flags L|R
// 192.0.2.10; xTR-ID 00112233..ff; site-ID 5.
var goldenMapRequestSMR = []byte{
	0x17, 0x10, 0x40, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0x01, 0x0a, 0x00,
	0x00, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x0a, 0x00, 0x20, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
	0x00, 0x00, 0x05, 0xa0, 0x01, 0x20, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01,
	0x01, 0x64, 0xff, 0x00, 0x00, 0x05, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x0a, 0x00, 0x11, 0x22, 0x33,
	0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x05,
}

func goldenMapRequestSMRMsg() *MapRequest {
	return &MapRequest{
		MapDataPresent: true, Probe: true, SMR: true, XTRIDPresent: true, LocalXTR: true,
		Nonce:     Nonce{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
		SourceEID: IPAddress(netip.MustParseAddr("10.0.0.1")),
		ITRRLOCs:  []Address{IPAddress(netip.MustParseAddr("192.0.2.10"))},
		Records:   []EIDRecord{{MaskLen: 32, EID: IPAddress(netip.MustParseAddr("10.0.0.2"))}},
		MapReply: Record{
			TTL: 1440, MaskLen: 32, Authoritative: true,
			EID: IPAddress(netip.MustParseAddr("10.0.0.1")),
			Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true,
				Address: IPAddress(netip.MustParseAddr("192.0.2.10"))}},
		},
		XTRID:  XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
		SiteID: 5,
	}
}

func TestMapRequestGolden(t *testing.T) {
	checkGolden(t, goldenMapRequestMsg(), goldenMapRequest)
	checkTruncations[MapRequest](t, goldenMapRequest)

	checkGolden(t, goldenMapRequestSMRMsg(), goldenMapRequestSMR)
	// Its I bit: 8 bytes short is the 16-byte xTR-ID trailer (RFC 9437).
	checkTrailerTruncations(t, goldenMapRequestSMR, true)

	// Each flag lands on its own bit of the first word (RFC 9301 §5.2).
	flags := []struct {
		set  func(*MapRequest)
		word uint32
	}{
		{func(m *MapRequest) { m.Authoritative = true }, 0x08000000},
		{func(m *MapRequest) { m.Probe = true }, 0x02000000},
		{func(m *MapRequest) { m.SMR = true }, 0x01000000},
		{func(m *MapRequest) { m.PITR = true }, 0x00800000},
		{func(m *MapRequest) { m.SMRInvoked = true }, 0x00400000},
		{func(m *MapRequest) { m.LocalXTR = true }, 0x00004000},
		{func(m *MapRequest) { m.DontMapReply = true }, 0x00002000},
	}
	for i, f := range flags {
		m := goldenMapRequestMsg()
		f.set(m)
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]); w != 0x10000101|f.word {
			t.Fatalf("flag %d: first word %08x, want %08x", i, w, 0x10000101|f.word)
		}
		var got MapRequest
		if err := got.Parse(b); err != nil || !reflect.DeepEqual(&got, m) {
			t.Fatalf("flag %d: round trip %v\n got %+v\nwant %+v", i, err, got, *m)
		}
	}
}

func TestMapRequestRoundTrip(t *testing.T) {
	for _, e := range testEIDs {
		t.Run(e.name, func(t *testing.T) {
			m := &MapRequest{
				SMRInvoked: true, PITR: true, DontMapReply: true,
				Nonce:     Nonce{1, 2, 3, 4, 5, 6, 7, 8},
				SourceEID: e.eid,
				ITRRLOCs: []Address{
					IPAddress(netip.MustParseAddr("2001:db8::7")),
					IPAddress(netip.MustParseAddr("198.51.100.1")),
					IPAddress(netip.MustParseAddr("198.51.100.2")),
				},
				Records: []EIDRecord{{MaskLen: e.masklen, EID: e.eid}, {MaskLen: 0, EID: e.eid}},
			}
			b := checkRoundTrip(t, m, goldenMapRequestSMR)
			checkTruncations[MapRequest](t, b)

			m.MapDataPresent, m.XTRIDPresent, m.SiteID = true, true, 1<<63
			m.MapReply = Record{TTL: 0xffffffff, MaskLen: e.masklen, Action: ActionDrop, EID: e.eid}
			b = checkRoundTrip(t, m, goldenMapRequestSMR)
			checkTrailerTruncations(t, b, true)

			// No source EID (AFI 0) is allowed (RFC 9301 §5.2).
			m.SourceEID = Address{}
			checkRoundTrip(t, m, goldenMapRequest)
		})
	}
	// 32 ITR-RLOCs: IRC 31 is the largest the 5-bit field holds.
	m := goldenMapRequestMsg()
	m.ITRRLOCs = m.ITRRLOCs[:0]
	for i := range 32 {
		m.ITRRLOCs = append(m.ITRRLOCs, IPAddress(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})))
	}
	b := checkRoundTrip(t, m, nil)
	if b[2]&0x1f != 31 {
		t.Fatalf("IRC %d for 32 ITR-RLOCs", b[2]&0x1f)
	}
}

func TestMapRequestBadInput(t *testing.T) {
	var m MapRequest
	// Wrong type nibble.
	for _, typ := range []byte{0x00, 0x20, 0x30, 0x80, 0xf0} {
		b := append([]byte(nil), goldenMapRequest...)
		b[0] = typ | b[0]&0x0f
		if err := m.Parse(b); !errors.Is(err, ErrBadType) {
			t.Fatalf("type byte %02x: %v, want ErrBadType", b[0], err)
		}
	}
	// Record count 255 with one record present.
	b := append([]byte(nil), goldenMapRequest...)
	b[3] = 255
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("record count 255: %v", err)
	}
	// Record count 0.
	b[3] = 0
	if err := m.Parse(b); !errors.Is(err, ErrBadValue) {
		t.Fatalf("record count 0: %v", err)
	}
	// IRC 31 (32 ITR-RLOCs announced) with one present.
	b = append([]byte(nil), goldenMapRequestSMR...)
	b[2] |= 31
	if err := m.Parse(b); err == nil {
		t.Fatal("IRC 31 with one ITR-RLOC parsed")
	}
	b = append([]byte(nil), goldenMapRequest...)
	b[2] |= 31
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("IRC 31 with two ITR-RLOCs: %v", err)
	}
	// Mask length beyond the EID.
	b = append([]byte(nil), goldenMapRequestSMR...)
	b[25] = 33
	if err := m.Parse(b); !errors.Is(err, ErrBadValue) {
		t.Fatalf("mask length 33: %v", err)
	}
	// Unknown AFI.
	b = append([]byte(nil), goldenMapRequestSMR...)
	b[13] = 99
	if err := m.Parse(b); !errors.Is(err, ErrBadAFI) {
		t.Fatalf("source EID AFI 99: %v", err)
	}

	// Encoding refuses counts the header cannot express.
	enc := goldenMapRequestMsg()
	enc.ITRRLOCs = nil
	if _, err := enc.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("no ITR-RLOCs: %v", err)
	}
	enc.ITRRLOCs = make([]Address, 33)
	for i := range enc.ITRRLOCs {
		enc.ITRRLOCs[i] = IPAddress(netip.MustParseAddr("192.0.2.1"))
	}
	if _, err := enc.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("33 ITR-RLOCs: %v", err)
	}
	enc = goldenMapRequestMsg()
	enc.Records = nil
	if _, err := enc.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("no records: %v", err)
	}
	enc.Records = make([]EIDRecord, 256)
	if _, err := enc.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("256 records: %v", err)
	}
	// An encoding error leaves b as it was.
	enc = goldenMapRequestMsg()
	enc.ITRRLOCs[1] = Address{AFI: AFIIPv4} // AFI 1 without an IPv4 address
	out, err := enc.Append([]byte{1, 2, 3})
	if !errors.Is(err, ErrBadAFI) || !bytes.Equal(out, []byte{1, 2, 3}) {
		t.Fatalf("bad ITR-RLOC: %v, %x", err, out)
	}
}

// oneRecordMapRequest is a Map-Request for one IID-wrapped IPv4 EID, the
// shape an ITR sends on a cache miss.
func oneRecordMapRequest() []byte {
	m := MapRequest{
		Nonce:     Nonce{9, 8, 7, 6, 5, 4, 3, 2},
		SourceEID: IIDAddress(100, netip.MustParseAddr("10.1.0.5")),
		ITRRLOCs:  []Address{IPAddress(netip.MustParseAddr("192.0.2.1"))},
		Records:   []EIDRecord{{MaskLen: 32, EID: IIDAddress(100, netip.MustParseAddr("10.2.0.9"))}},
	}
	b, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func TestMapRequestParseAllocs(t *testing.T) {
	b := oneRecordMapRequest()
	var m MapRequest
	if err := m.Parse(goldenMapRequestSMR); err != nil { // warm up with a bigger message
		t.Fatal(err)
	}
	var err error
	allocs := testing.AllocsPerRun(200, func() { err = m.Parse(b) })
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("MapRequest.Parse into a reused struct: %v allocations, want 0", allocs)
	}
	if m.MapDataPresent || m.XTRIDPresent || len(m.MapReply.Locators) != 0 || m.SiteID != 0 {
		t.Fatalf("stale fields after reuse: %+v", m)
	}
}

func mapRequestSeeds() [][]byte {
	seeds := [][]byte{goldenMapRequest, goldenMapRequestSMR, oneRecordMapRequest()}
	m := goldenMapRequestSMRMsg()
	m.SourceEID = MACAddress([6]byte{2, 0, 0, 0, 0, 1})
	m.Records[0] = EIDRecord{MaskLen: 48, EID: m.SourceEID}
	m.MapReply.EID, m.MapReply.MaskLen = NameAddress("group-224.1.1.1"), 0
	b, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	// RFC 9437 subscriptions: the N bit, both trailer forms.
	sub, _ := subscribeRequest()
	lispers, _ := hex.DecodeString(lispersSubscribe)
	return append(seeds, b, sub, lispers)
}

func FuzzMapRequest(f *testing.F) {
	for _, s := range mapRequestSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStable[MapRequest](t, data, goldenMapRequestSMR)
	})
}

func TestMapRequestSeedCorpus(t *testing.T) {
	seeds := mapRequestSeeds()
	for _, s := range seeds {
		var m MapRequest
		if err := m.Parse(s); err != nil {
			t.Fatalf("seed does not parse: %v", err)
		}
	}
	checkSeedCorpus(t, "FuzzMapRequest", seeds)
}

// TestXTRIDString checks the hex form used in logs.
func TestXTRIDString(t *testing.T) {
	x := XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	if s := x.String(); s != "00112233445566778899aabbccddeeff" || strings.ToLower(s) != s {
		t.Fatalf("XTRID.String() = %q", s)
	}
}
