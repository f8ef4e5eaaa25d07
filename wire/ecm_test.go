package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// A Map-Request-shaped inner message (type 1); Map-Request itself is
// encoded elsewhere, so these are arbitrary bytes starting with 0x10.
var (
	ecmInner4 = []byte{0x10, 0x00, 0x00, 0x01, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11}
	ecmInner6 = []byte{0x10, 0x00, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x9a}
)

// ECM (RFC 9301 §5.8) with M set, inner IPv4 192.0.2.10 -> 10.1.2.3, TTL 64,
// UDP 54321 -> 4342, 12-byte message. Checksums computed independently
// (RFC 1071): IPv4 header acb7, UDP 0857.
//
//	0000  81 00 00 00 45 00 00 28  00 00 00 00 40 11 ac b7   type 8 M, IPv4 len 40 TTL 64 UDP csum
//	0010  c0 00 02 0a 0a 01 02 03  d4 31 10 f6 00 14 08 57   src, dst, UDP ports, len 20, csum
//	0020  10 00 00 01 0a 0b 0c 0d  0e 0f 10 11               inner LISP message
var goldenECM4 = []byte{
	0x81, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0xac, 0xb7,
	0xc0, 0x00, 0x02, 0x0a, 0x0a, 0x01, 0x02, 0x03, 0xd4, 0x31, 0x10, 0xf6, 0x00, 0x14, 0x08, 0x57,
	0x10, 0x00, 0x00, 0x01, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11,
}

// ECM with D and E set, inner IPv6 2001:db8::a -> 2001:db8:1::3, hop limit
// 64, UDP 4342 -> 4342, 13-byte (odd) message; UDP checksum c701.
//
//	0000  86 00 00 00 60 00 00 00  00 15 11 40 20 01 0d b8   type 8 D E, IPv6 payload 21 UDP hop 64
//	0010  00 00 00 00 00 00 00 00  00 00 00 0a 20 01 0d b8   src 2001:db8::a
//	0020  00 01 00 00 00 00 00 00  00 00 00 03 10 f6 10 f6   dst 2001:db8:1::3, UDP ports
//	0030  00 15 c7 01 10 00 00 01  11 22 33 44 55 66 77 88   len 21, csum, message
//	0040  9a
var goldenECM6 = []byte{
	0x86, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x15, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x10, 0xf6, 0x10, 0xf6,
	0x00, 0x15, 0xc7, 0x01, 0x10, 0x00, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
	0x9a,
}

func sampleECM4() *ECM {
	return &ECM{ToMapServer: true, Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("10.1.2.3"),
		SrcPort: 54321, DstPort: 4342, TTL: 64, Message: ecmInner4}
}

func sampleECM6() *ECM {
	return &ECM{DDT: true, ToETR: true, Src: netip.MustParseAddr("2001:db8::a"), Dst: netip.MustParseAddr("2001:db8:1::3"),
		SrcPort: 4342, DstPort: 4342, TTL: 64, Message: ecmInner6}
}

func TestECMGolden(t *testing.T) {
	for _, c := range []struct {
		m      *ECM
		golden []byte
	}{{sampleECM4(), goldenECM4}, {sampleECM6(), goldenECM6}} {
		var got ECM
		msg2Golden(t, c.m, &got, c.golden, false)
		if err := got.Parse(c.golden); err != nil {
			t.Fatal(err)
		}
		w := c.m
		if got.DDT != w.DDT || got.ToETR != w.ToETR || got.ToMapServer != w.ToMapServer || got.Security ||
			got.Src != w.Src || got.Dst != w.Dst || got.SrcPort != w.SrcPort || got.DstPort != w.DstPort || got.TTL != w.TTL ||
			!bytes.Equal(got.Message, w.Message) {
			t.Fatalf("parsed %+v\nwant %+v", got, *w)
		}
		// Message and Inner alias the input: no copy.
		if &got.Message[0] != &c.golden[len(c.golden)-len(w.Message)] || &got.Inner[0] != &c.golden[4] {
			t.Fatalf("Message/Inner are not sub-slices of the input")
		}
		if !got.ChecksumsOK() {
			t.Fatalf("checksums of the golden vector rejected")
		}
		bad := msg2Patched(c.golden, len(c.golden)-1, c.golden[len(c.golden)-1]^0x40)
		if err := got.Parse(bad); err != nil || got.ChecksumsOK() {
			t.Fatalf("corrupted message: parse %v, checksums ok %v", err, got.ChecksumsOK())
		}
		if typ, _ := PeekType(got.Message); typ != TypeMapRequest {
			t.Fatalf("inner type %v", typ)
		}
	}
}

func TestECMInnerHeaderErrors(t *testing.T) {
	var e ECM
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"S bit without LISP-SEC data", msg2Patched(goldenECM4, 0, 0x89), ErrBadValue},
		{"IP version 5", msg2Patched(goldenECM4, 4, 0x55), ErrBadValue},
		{"IHL 4", msg2Patched(goldenECM4, 4, 0x44), ErrBadLength},
		{"IHL 15", msg2Patched(goldenECM4, 4, 0x4f), ErrBadLength},
		{"IPv4 total length +1", msg2Patched(goldenECM4, 7, 0x29), ErrTruncated},
		{"IPv4 total length -1", msg2Patched(goldenECM4, 7, 0x27), ErrBadLength},
		{"IPv4 total length 27", msg2Patched(msg2Patched(goldenECM4, 7, 0x1b), 6, 0), ErrBadLength},
		{"IPv4 protocol TCP", msg2Patched(goldenECM4, 13, 6), ErrBadValue},
		{"IPv4 more fragments", msg2Patched(goldenECM4, 10, 0x20), ErrBadValue},
		{"IPv4 fragment offset", msg2Patched(goldenECM4, 11, 0x01), ErrBadValue},
		{"UDP length +1", msg2Patched(goldenECM4, 29, 0x15), ErrBadLength},
		{"UDP length 8", msg2Patched(goldenECM4, 29, 0x08), ErrBadLength},
		{"IPv6 payload +1", msg2Patched(goldenECM6, 9, 0x16), ErrTruncated},
		{"IPv6 payload -1", msg2Patched(goldenECM6, 9, 0x14), ErrBadLength},
		{"IPv6 hop-by-hop header", msg2Patched(goldenECM6, 10, 0), ErrBadValue},
		{"IPv6 UDP length", msg2Patched(goldenECM6, 49, 0x14), ErrBadLength},
		{"not an ECM", goldenMapReferral, ErrBadType},
	}
	for _, c := range cases {
		if err := e.Parse(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	// An IPv6 UDP payload shorter than the UDP header.
	short := append([]byte(nil), goldenECM6[:4+40+4]...)
	short[9] = 4
	if err := e.Parse(short); !errors.Is(err, ErrBadLength) {
		t.Errorf("IPv6 payload 4: %v", err)
	}
}

func TestECMInnerOptions(t *testing.T) {
	// IPv4 with 4 bytes of options (NOPs): IHL 6, total 44; Parse skips them.
	b := append([]byte(nil), goldenECM4[:24]...)
	b[4], b[7] = 0x46, 0x2c
	b = append(b, 1, 1, 1, 1)
	b = append(b, goldenECM4[24:]...)
	var e ECM
	if err := e.Parse(b); err != nil {
		t.Fatal(err)
	}
	if e.SrcPort != 54321 || !bytes.Equal(e.Message, ecmInner4) {
		t.Fatalf("with options: %+v", e)
	}
	if e.ChecksumsOK() { // the header checksum was not updated
		t.Fatalf("stale IPv4 header checksum accepted")
	}
	// Re-encoding drops the options and yields the option-less vector.
	out, err := e.Append(nil)
	if err != nil || !bytes.Equal(out, goldenECM4) {
		t.Fatalf("re-encode: %v\n%x", err, out)
	}
}

func TestECMAppendErrors(t *testing.T) {
	e := sampleECM4()
	e.Dst = netip.MustParseAddr("2001:db8::1")
	if _, err := e.Append(nil); !errors.Is(err, ErrBadAFI) {
		t.Fatalf("mixed families: %v", err)
	}
	e = sampleECM4()
	e.Message = nil
	if _, err := e.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("empty message: %v", err)
	}
	e = sampleECM4()
	e.Security = true // without Auth
	if _, err := e.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("S bit without LISP-SEC data: %v", err)
	}
	e = sampleECM4()
	e.Message = make([]byte, 0xffff)
	if _, err := e.Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize IPv4: %v", err)
	}
	e = sampleECM6()
	e.Message = make([]byte, 0xffff)
	if _, err := e.Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize IPv6: %v", err)
	}
	// The largest IPv6 payload fits, and its checksum verifies.
	e.Message = make([]byte, 0xffff-8)
	e.Message[0] = 0x10
	b, err := e.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var p ECM
	if err := p.Parse(b); err != nil || !p.ChecksumsOK() {
		t.Fatalf("largest IPv6 ECM: %v ok=%v", err, p.ChecksumsOK())
	}
}

func TestECMParseAllocs(t *testing.T) {
	var e ECM
	for _, g := range [][]byte{goldenECM4, goldenECM6} {
		if n := testing.AllocsPerRun(100, func() {
			if err := e.Parse(g); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("ECM.Parse allocates %v times", n)
		}
	}
}

func FuzzECM(f *testing.F) {
	f.Add(goldenECM4)
	f.Add(goldenECM6)
	f.Add(goldenSecECM(f))
	f.Add(append(append([]byte{0x89, 0, 0, 0}, unhex(f, goldenITRECMAD)...), goldenECM4[4:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b ECM
		msg2FuzzStable(t, data, &a, &b)
	})
}

func BenchmarkECMParse(b *testing.B) {
	var e ECM
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Parse(goldenECM4); err != nil {
			b.Fatal(err)
		}
	}
	msg2ReportPerMsg(b)
}

func BenchmarkECMAppend(b *testing.B) {
	e := sampleECM6()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = e.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	msg2ReportPerMsg(b)
}
