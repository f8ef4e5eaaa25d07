package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// unhex decodes a hex dump that may contain spaces and newlines.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Golden LISP data headers, written by hand from the figure of RFC 9300
// §5.1 and the field rules of §5.3:
//
//	|N|L|E|V|I|R|K|K|            Nonce/Map-Version                  |
//	|                 Instance ID/Locator-Status-Bits               |
var headerGolden = []struct {
	name string
	hex  string
	f    HeaderFields
}{
	// N=1: nonce 0xabcdef; second word unused and zero.
	// 1000 0000 | ab cd ef | 00 00 00 00
	{"N", "80 abcdef 00000000", HeaderFields{Flags: FlagN, Nonce: 0xabcdef}},
	// N=1 L=1: nonce 0x123456, 32 LSBs = 0x00000003 (locators 0 and 1 up).
	// 1100 0000 | 12 34 56 | 00 00 00 03
	{"NL", "c0 123456 00000003", HeaderFields{Flags: FlagN | FlagL, Nonce: 0x123456, LSBs: 3}},
	// N=1 L=1 I=1: nonce 0x010203, instance-ID 0x00abcd (43981), 8 LSBs 0x05.
	// 1100 1000 | 01 02 03 | 00 ab cd | 05
	{"NLI", "c8 010203 00abcd 05", HeaderFields{Flags: FlagN | FlagL | FlagI, Nonce: 0x010203, InstanceID: 0xabcd, LSBs: 5}},
	// I=1 only: instance-ID 0xffffff (the largest); 8 LSBs unused and zero.
	// 0000 1000 | 00 00 00 | ff ff ff | 00
	{"I-max", "08 000000 ffffff 00", HeaderFields{Flags: FlagI, InstanceID: MaxInstanceID}},
	// V=1: source map-version 0x123, destination map-version 0x456.
	// 0001 0000 | 0001 0010 0011 | 0100 0101 0110 | 00000000
	{"V", "10 123456 00000000", HeaderFields{Flags: FlagV, SourceMapVersion: 0x123, DestMapVersion: 0x456}},
	// V=1 I=1 L=1: map-versions 1 and 2, instance-ID 7, 8 LSBs 0x01.
	// 0101 1000 | 001 002 | 00 00 07 | 01
	{"VLI", "58 001002 000007 01", HeaderFields{Flags: FlagV | FlagL | FlagI, SourceMapVersion: 1, DestMapVersion: 2, InstanceID: 7, LSBs: 1}},
	// N=1 E=1: echo-nonce request with nonce 1.
	// 1010 0000 | 00 00 01 | 00 00 00 00
	{"NE", "a0 000001 00000000", HeaderFields{Flags: FlagN | FlagE, Nonce: 1}},
	// N=1 KK=01: payload encrypted with key 1 (RFC 8061), nonce 0xffffff.
	// 1000 0001 | ff ff ff | 00 00 00 00
	{"N-KK", "81 ffffff 00000000", HeaderFields{Flags: FlagN | 1, Nonce: MaxNonce}},
	// L=1 alone: 32 LSBs 0x80000001.
	// 0100 0000 | 00 00 00 | 80 00 00 01
	{"L", "40 000000 80000001", HeaderFields{Flags: FlagL, LSBs: 0x80000001}},
	// No flags at all: every field zero.
	{"none", "00 000000 00000000", HeaderFields{}},
}

func TestHeaderGolden(t *testing.T) {
	for _, g := range headerGolden {
		t.Run(g.name, func(t *testing.T) {
			want := unhex(t, g.hex)
			if len(want) != HeaderLen {
				t.Fatalf("golden is %d bytes", len(want))
			}
			got := AppendHeader(nil, &g.f)
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			h, err := ParseHeader(want)
			if err != nil {
				t.Fatal(err)
			}
			var f HeaderFields
			h.Decode(&f)
			if f != g.f {
				t.Fatalf("decode: got %+v want %+v", f, g.f)
			}
			if h.Flags() != g.f.Flags || h.NoncePresent() != (g.f.Flags&FlagN != 0) ||
				h.LSBsEnabled() != (g.f.Flags&FlagL != 0) || h.MapVersionPresent() != (g.f.Flags&FlagV != 0) ||
				h.InstanceIDPresent() != (g.f.Flags&FlagI != 0) || h.KeyID() != g.f.Flags&FlagsKK {
				t.Errorf("flag accessors disagree with %#x", g.f.Flags)
			}
			if g.f.Flags&FlagN != 0 && h.Nonce() != g.f.Nonce {
				t.Errorf("Nonce() = %#x", h.Nonce())
			}
			if g.f.Flags&FlagI != 0 && h.InstanceID() != g.f.InstanceID {
				t.Errorf("InstanceID() = %#x", h.InstanceID())
			}
			if g.f.Flags&FlagL != 0 && h.LSBs() != g.f.LSBs {
				t.Errorf("LSBs() = %#x", h.LSBs())
			}
			// Appending keeps what was there.
			pre := []byte{0xee, 0xff}
			if got := AppendHeader(pre, &g.f); !bytes.Equal(got[:2], pre) || !bytes.Equal(got[2:], want) {
				t.Errorf("append to prefix: %x", got)
			}
		})
	}
}

func TestHeaderEchoNonceRequest(t *testing.T) {
	for _, c := range []struct {
		flags uint8
		want  bool
	}{{FlagE, false}, {FlagN, false}, {FlagN | FlagE, true}, {FlagE | FlagV, false}} {
		h := Header(AppendHeader(nil, &HeaderFields{Flags: c.flags}))
		if got := h.EchoNonceRequest(); got != c.want {
			t.Errorf("flags %#x: EchoNonceRequest %v, want %v", c.flags, got, c.want)
		}
	}
}

func TestHeaderNV(t *testing.T) {
	b := unhex(t, "90 123456 00000000")
	if _, err := ParseHeader(b); !errors.Is(err, ErrBadValue) {
		t.Fatalf("N and V: err %v, want ErrBadValue", err)
	}
	if err := Header(b).Validate(); !errors.Is(err, ErrBadValue) {
		t.Fatalf("Validate: %v", err)
	}
	if !Header(b).IsValid() {
		t.Fatalf("IsValid is a length check only")
	}
	// Bits that are ignored on receipt do not invalidate a header.
	for _, f := range []uint8{FlagE, FlagR, FlagsKK, FlagE | FlagV} {
		if _, err := ParseHeader([]byte{f, 0, 0, 0, 0, 0, 0, 0}); err != nil {
			t.Errorf("flags %#x: %v", f, err)
		}
	}
}

func TestHeaderTruncated(t *testing.T) {
	for _, g := range headerGolden {
		b := unhex(t, g.hex)
		for n := 0; n < len(b); n++ {
			if _, err := ParseHeader(b[:n]); !errors.Is(err, ErrTruncated) {
				t.Errorf("%s[:%d]: err %v, want ErrTruncated", g.name, n, err)
			}
			if Header(b[:n]).IsValid() {
				t.Errorf("%s[:%d]: IsValid", g.name, n)
			}
		}
		// Longer input is fine: the header is a prefix of the packet.
		h, err := ParseHeader(append(b, 0x45, 0))
		if err != nil || len(h) != HeaderLen {
			t.Errorf("%s + payload: %v, len %d", g.name, err, len(h))
		}
	}
}

func TestHeaderEncodeRules(t *testing.T) {
	// With I set only 8 LSBs and 24 bits of instance-ID fit; the rest is
	// cut off, never spilled into the neighbouring field.
	h := Header(AppendHeader(nil, &HeaderFields{Flags: FlagL | FlagI, InstanceID: 0x1abcdef, LSBs: 0x1234}))
	if h.InstanceID() != 0xabcdef || h.LSBs() != 0x34 {
		t.Errorf("masking: iid %#x lsb %#x (%x)", h.InstanceID(), h.LSBs(), []byte(h))
	}
	// Fields whose flag is clear are transmitted as zero (RFC 9300 §5.3).
	h = Header(AppendHeader(nil, &HeaderFields{Flags: FlagI, Nonce: 0xffffff, LSBs: 0xff, InstanceID: 2}))
	if want := unhex(t, "08 000000 000002 00"); !bytes.Equal(h, want) {
		t.Errorf("unused fields: %x, want %x", []byte(h), want)
	}
	// Setters.
	h = make(Header, HeaderLen)
	h.SetFlags(FlagV)
	h.SetMapVersions(0xfff, 0x001)
	if h.SourceMapVersion() != 0xfff || h.DestMapVersion() != 1 || h.Nonce() != 0xfff001 {
		t.Errorf("map versions: %x", []byte(h))
	}
	h.SetFlags(FlagN | FlagL)
	h.SetNonce(0x1000001)
	h.SetLSBs(0xdeadbeef)
	if h.Nonce() != 1 || h.LSBs() != 0xdeadbeef {
		t.Errorf("nonce/lsbs: %x", []byte(h))
	}
	h.SetFlags(FlagN | FlagL | FlagI)
	h.SetInstanceID(0x010203)
	h.SetLSBs(0x77)
	if want := unhex(t, "c8 000001 010203 77"); !bytes.Equal(h, want) {
		t.Errorf("setters: %x, want %x", []byte(h), want)
	}
}

func TestHeaderRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		f := HeaderFields{Flags: uint8(r.Uint32())}
		if f.Flags&(FlagN|FlagV) == FlagN|FlagV {
			f.Flags &^= FlagV
		}
		if f.Flags&FlagN != 0 {
			f.Nonce = r.Uint32() & MaxNonce
		}
		if f.Flags&FlagV != 0 {
			f.SourceMapVersion = uint16(r.Uint32() & MaxMapVersion)
			f.DestMapVersion = uint16(r.Uint32() & MaxMapVersion)
		}
		if f.Flags&FlagI != 0 {
			f.InstanceID = r.Uint32() & MaxInstanceID
		}
		if f.Flags&FlagL != 0 {
			f.LSBs = r.Uint32()
			if f.Flags&FlagI != 0 {
				f.LSBs &= 0xff
			}
		}
		b := AppendHeader(nil, &f)
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var g HeaderFields
		h.Decode(&g)
		if g != f {
			t.Fatalf("round trip: %+v -> %x -> %+v", f, b, g)
		}
	}
}

func TestHeaderAllocs(t *testing.T) {
	b := unhex(t, "c8 010203 00abcd 05")
	buf := make([]byte, 0, 64)
	var f HeaderFields
	n := testing.AllocsPerRun(1000, func() {
		h, err := ParseHeader(b)
		if err != nil {
			panic(err)
		}
		h.Decode(&f)
		_ = AppendHeader(buf[:0], &f)
		Header(buf[:HeaderLen]).Encode(&f)
		_, _ = ParseHeader(b[:3])         // error path
		_ = Header(unhexNV[:]).Validate() // error path
	})
	if n != 0 {
		t.Fatalf("header parse/write allocates %v times per run", n)
	}
}

var unhexNV = [8]byte{0x90}

// FuzzDataHeader checks that parsing any input never panics, that every
// accepted header decodes to fields that encode back to a header that
// parses to the same fields, and that canonical encodings are stable
// byte for byte.
func FuzzDataHeader(f *testing.F) {
	for _, g := range headerGolden {
		b, _ := hex.DecodeString(strings.Join(strings.Fields(g.hex), ""))
		f.Add(b)
	}
	f.Add([]byte{0x90, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if len(b) >= HeaderLen && !errors.Is(err, ErrBadValue) {
				t.Fatalf("long input rejected with %v", err)
			}
			if len(b) < HeaderLen && !errors.Is(err, ErrTruncated) {
				t.Fatalf("short input rejected with %v", err)
			}
			return
		}
		var f1, f2 HeaderFields
		h.Decode(&f1)
		enc := AppendHeader(nil, &f1)
		h2, err := ParseHeader(enc)
		if err != nil {
			t.Fatalf("re-encoding of %x (%x) does not parse: %v", b[:HeaderLen], enc, err)
		}
		h2.Decode(&f2)
		if f1 != f2 {
			t.Fatalf("unstable: %+v vs %+v", f1, f2)
		}
		if enc2 := AppendHeader(nil, &f2); !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding unstable: %x vs %x", enc, enc2)
		}
	})
}
