package ring

import (
	"net/netip"
	"testing"
)

// TestEntryAddrs: OuterDst reads the RLOC from an offload entry's front
// (outer IPv4 or, with V6, IPv6 destination), InnerDst a decap entry's
// destination of either version.
func TestEntryAddrs(t *testing.T) {
	var e4, e6 OffloadEntry
	copy(e4.Front[14+16:], []byte{192, 0, 2, 9})
	e6.V6 = true
	r6 := netip.MustParseAddr("2001:db8:ff::9")
	b := r6.As16()
	copy(e6.Front[14+24:], b[:])
	if got := e4.OuterDst(); got != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("IPv4 front: OuterDst %v", got)
	}
	if got := e6.OuterDst(); got != r6 {
		t.Errorf("IPv6 front: OuterDst %v", got)
	}
	d4 := DecapEntry{Dst: [4]byte{10, 2, 0, 7}}
	d6 := DecapEntry{InnerV6: true, Dst6: netip.MustParseAddr("2001:db8:2::7").As16()}
	if got := d4.InnerDst(); got != netip.MustParseAddr("10.2.0.7") {
		t.Errorf("InnerDst %v", got)
	}
	if got := d6.InnerDst(); got != netip.MustParseAddr("2001:db8:2::7") {
		t.Errorf("InnerDst (IPv6) %v", got)
	}
}
