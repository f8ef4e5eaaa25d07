package gre

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// ipv4Packet is a minimal IPv4 packet (header only, total length 20) from
// 10.255.0.0 to 10.255.0.1.
func ipv4Packet() []byte {
	p := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 255, 0, 0, 10, 255, 0, 1}
	return p
}

func headers() []Header {
	return []Header{
		{Protocol: ProtoIPv4},
		{Protocol: ProtoIPv6, Checksum: true},
		{Protocol: ProtoIPv4, HasKey: true, Key: 0xdeadbeef},
		{Protocol: ProtoIPv4, Checksum: true, HasKey: true, Key: 7},
	}
}

func TestRoundTrip(t *testing.T) {
	payload := ipv4Packet()
	for _, h := range headers() {
		b := Append([]byte{0xAA}, &h, payload)[1:]
		if len(b) != h.Len()+len(payload) {
			t.Fatalf("%+v: encoded %d bytes, want %d", h, len(b), h.Len()+len(payload))
		}
		var got Header
		p, err := Parse(b, &got)
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if got != h || !bytes.Equal(p, payload) {
			t.Fatalf("decoded %+v %x, want %+v %x", got, p, h, payload)
		}
	}
}

// TestWireLayout pins the bits of RFC 2784 §2 and RFC 2890 §2.1: C is the
// top bit, K the third, the protocol type follows, then checksum and
// reserved1, then the key.
func TestWireLayout(t *testing.T) {
	h := Header{Protocol: ProtoIPv4, Checksum: true, HasKey: true, Key: 0x01020304}
	b := Append(nil, &h, nil)
	if got := binary.BigEndian.Uint16(b); got != 0xA000 {
		t.Fatalf("flags %#04x, want 0xa000", got)
	}
	if !bytes.Equal(b[2:4], []byte{0x08, 0x00}) || !bytes.Equal(b[6:8], []byte{0, 0}) || !bytes.Equal(b[8:12], []byte{1, 2, 3, 4}) {
		t.Fatalf("layout %x", b)
	}
	// Checksum of the header alone: one's complement of 0xa000+0x0800+0x0102+0x0304.
	if got, want := binary.BigEndian.Uint16(b[4:]), ^uint16(0xa000+0x0800+0x0102+0x0304); got != want {
		t.Fatalf("checksum %#04x, want %#04x", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	good := Append(nil, &Header{Protocol: ProtoIPv4, Checksum: true}, ipv4Packet())
	flip := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] ^= v
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"version 1", flip(1, 0x01), ErrVersion},
		{"routing present", flip(0, 0x40), ErrReserved0},
		{"strict source route", flip(0, 0x08), ErrReserved0},
		{"recursion", flip(0, 0x04), ErrReserved0},
		{"sequence", flip(0, 0x10), ErrSequence},
		{"payload changed", flip(len(good)-1, 0x01), ErrBadChecksum},
		{"empty", nil, ErrTruncated},
	} {
		var h Header
		if _, err := Parse(c.b, &h); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Bits 6-12 of reserved0 are ignored by a receiver (RFC 2784 §2.3).
	b := Append(nil, &Header{Protocol: ProtoIPv4}, ipv4Packet())
	b[0] |= 0x03
	b[1] |= 0xf8
	var h Header
	if _, err := Parse(b, &h); err != nil {
		t.Fatalf("reserved0 bits 6-12 set: %v", err)
	}
}

// TestTruncated: every prefix shorter than the header fails cleanly.
func TestTruncated(t *testing.T) {
	for _, h := range headers() {
		b := Append(nil, &h, nil)
		for n := range len(b) {
			var got Header
			if _, err := Parse(b[:n], &got); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%+v cut to %d: %v, want ErrTruncated", h, n, err)
			}
		}
	}
}

func TestParseAllocs(t *testing.T) {
	b := Append(nil, &Header{Protocol: ProtoIPv4, Checksum: true, HasKey: true, Key: 9}, ipv4Packet())
	var h Header
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(b, &h) }); n != 0 {
		t.Fatalf("Parse allocates %v times", n)
	}
}

// FuzzParse: Parse never panics, and what it accepts encodes back to
// the same bytes once the ignored reserved bits are cleared.
func FuzzParse(f *testing.F) {
	for _, h := range headers() {
		f.Add(Append(nil, &h, ipv4Packet()))
	}
	f.Add([]byte{0x10, 0, 8, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		p, err := Parse(b, &h)
		if err != nil {
			return
		}
		again := Append(nil, &h, p)
		var h2 Header
		p2, err := Parse(again, &h2)
		if err != nil || h2 != h || !bytes.Equal(p2, p) {
			t.Fatalf("re-encoding %+v: %v %+v", h, err, h2)
		}
	})
}
