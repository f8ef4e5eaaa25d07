package discovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func sampleMSFD() MSFD {
	return MSFD{
		Function: FunctionMapResolver | FunctionMapServer, Status: StatusEnabled,
		Capabilities: CapBulk | CapSubscribe, Unavailable: 300 * time.Second, Reboot: 20 * time.Second,
		Port:     4342,
		Locators: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
	}
}

// TestMSFDBytes pins the layout docs/discovery.md documents byte by byte.
func TestMSFDBytes(t *testing.T) {
	m := MSFD{Function: FunctionMapResolver, Status: StatusDisabled, Capabilities: CapSubscribe,
		Unavailable: 258 * time.Second, Reboot: 3 * time.Second, Port: 4342,
		Locators: []netip.Addr{netip.MustParseAddr("10.1.2.3")}}
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x80, 0x00, 0x00, 0x12, // type 32768, length 18
		0x01, 0x02, 0x00, 0x02, // map-resolver, disabled, subscribe
		0x01, 0x02, 0x00, 0x03, // unavailability 258 s, reboot 3 s
		0x10, 0xf6, 0x01, 0x00, // port 4342, 1 locator, reserved
		0x00, 0x01, 10, 1, 2, 3, // AFI 1, 10.1.2.3
		0x00, 0x00, // padding to 4 bytes
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded\n% x\nwant\n% x", b, want)
	}
}

func parseAll(t *testing.T, body []byte) ([]MSFD, []error, error) {
	t.Helper()
	var got []MSFD
	var bad []error
	err := ParseRIBody(body, func(m *MSFD) { got = append(got, m.Clone()) }, func(e error) { bad = append(bad, e) })
	return got, bad, err
}

// TestMSFDRoundTrip: an RI body with an Informational Capabilities TLV
// (skipped) and two MSFD TLVs decodes to what was encoded.
func TestMSFDRoundTrip(t *testing.T) {
	a := sampleMSFD()
	b := MSFD{Function: FunctionMapServer, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("198.51.100.7")}}
	body := []byte{0, TLVTypeCapabilities, 0, 4, 0, 0, 0, 1}
	var err error
	if body, err = a.Append(body); err != nil {
		t.Fatal(err)
	}
	if body, err = b.Append(body); err != nil {
		t.Fatal(err)
	}
	got, bad, err := parseAll(t, body)
	if err != nil || len(bad) != 0 {
		t.Fatalf("parse: %v %v", err, bad)
	}
	if !reflect.DeepEqual(got, []MSFD{a, b}) {
		t.Fatalf("got %+v\nwant %+v", got, []MSFD{a, b})
	}
}

// TestMSFDTruncated: every truncated prefix of a valid body ends cleanly:
// a framing error or a bad TLV, never a TLV that decodes to something else.
func TestMSFDTruncated(t *testing.T) {
	m := sampleMSFD()
	body, _ := m.Append(nil)
	for n := 1; n < len(body)-2; n++ { // the last two bytes are padding
		got, bad, err := parseAll(t, body[:n])
		if err == nil && len(bad) == 0 {
			t.Fatalf("prefix %d of %d parsed: %+v", n, len(body), got)
		}
		if len(got) != 0 {
			t.Fatalf("prefix %d: decoded %+v", n, got)
		}
	}
}

// TestMSFDMalformed: each malformed field is reported with its reason and
// the TLVs after it still decode.
func TestMSFDMalformed(t *testing.T) {
	good := MSFD{Function: FunctionMapResolver, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	for _, c := range []struct {
		name string
		edit func(v []byte) []byte // the TLV (header + value + padding)
		want error
	}{
		{"no function", func(v []byte) []byte { v[4] = 0; return v }, ErrFunction},
		{"status 0", func(v []byte) []byte { v[5] = 0; return v }, ErrStatus},
		{"status 9", func(v []byte) []byte { v[5] = 9; return v }, ErrStatus},
		{"no locator", func(v []byte) []byte { v[14] = 0; return v }, ErrLocators},
		{"17 locators", func(v []byte) []byte { v[14] = 17; return v }, ErrLocators},
		{"count beyond length", func(v []byte) []byte { v[14] = 2; return v }, ErrLength},
		{"AFI 3", func(v []byte) []byte { v[17] = 3; return v }, ErrAFI},
		{"unspecified locator", func(v []byte) []byte { copy(v[18:22], []byte{0, 0, 0, 0}); return v }, ErrAddress},
		{"multicast locator", func(v []byte) []byte { v[18] = 224; return v }, ErrAddress},
		{"trailing byte in length", func(v []byte) []byte {
			binary.BigEndian.PutUint16(v[2:], binary.BigEndian.Uint16(v[2:])+1)
			return append(v, 0, 0, 0, 0)
		}, ErrLength},
		{"too short", func(v []byte) []byte { binary.BigEndian.PutUint16(v[2:], 8); return v[:12] }, ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, _ := good.Append(nil)
			body := c.edit(v)
			after, _ := good.Append(nil)
			body = append(body, after...)
			got, bad, err := parseAll(t, body)
			if err != nil {
				t.Fatalf("framing error %v, want a bad TLV", err)
			}
			if len(bad) != 1 || !errors.Is(bad[0], c.want) {
				t.Fatalf("bad %v, want %v", bad, c.want)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], good) {
				t.Fatalf("the following TLV: %+v", got)
			}
		})
	}
}

// TestMSFDAppendRefuses: what cannot be encoded is refused and b is kept.
func TestMSFDAppendRefuses(t *testing.T) {
	for _, m := range []MSFD{
		{Function: 0, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		{Function: FunctionMapResolver, Status: 0, Locators: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		{Function: FunctionMapResolver, Status: StatusEnabled},
		{Function: FunctionMapResolver, Status: StatusEnabled, Locators: []netip.Addr{{}}},
		{Function: FunctionMapResolver, Status: StatusEnabled, Reboot: 70000 * time.Second, Locators: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
	} {
		b, err := m.Append([]byte{1, 2})
		if err == nil || !bytes.Equal(b, []byte{1, 2}) {
			t.Errorf("%+v: %v, % x", m, err, b)
		}
	}
}

func TestMSFDParseAllocs(t *testing.T) {
	m := sampleMSFD()
	body, _ := m.Append(nil)
	var dec MSFD
	dec.Locators = make([]netip.Addr, 0, MaxLocators)
	n := testing.AllocsPerRun(100, func() {
		if err := dec.parseValue(body[4 : 4+m.Len()]); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

// FuzzParseRIBody: any body parses without panicking, and every MSFD TLV
// it yields encodes again to a TLV that decodes to the same value.
func FuzzParseRIBody(f *testing.F) {
	m := sampleMSFD()
	seed, _ := m.Append([]byte{0, 1, 0, 4, 0, 0, 0, 0})
	f.Add(seed)
	one := MSFD{Function: FunctionMapServer, Status: StatusDisabled, Locators: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	seed2, _ := one.Append(nil)
	f.Add(seed2)
	f.Add([]byte{0x80, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = ParseRIBody(body, func(m *MSFD) {
			// Unknown function and capability bits are kept as received
			// but not encoded: compare the known part.
			c := m.Clone()
			c.Function &= functionMask
			b, err := c.Append(nil)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", c, err)
			}
			var back []MSFD
			if err := ParseRIBody(b, func(x *MSFD) { back = append(back, x.Clone()) }, func(e error) { t.Fatalf("re-parse: %v", e) }); err != nil {
				t.Fatal(err)
			}
			if len(back) != 1 || !reflect.DeepEqual(back[0], c) {
				t.Fatalf("round trip %+v -> %+v", c, back)
			}
		}, func(error) {})
	})
}
