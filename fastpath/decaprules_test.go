package fastpath

import (
	"bytes"
	"testing"

	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// TestDecapRulesShortcut checks the worker's shortcut for IPv4 packets under
// a Not-ECT outer header against wire.ApplyDecap, byte for byte, over the
// TTLs around the edges and every inner TOS.
func TestDecapRulesShortcut(t *testing.T) {
	w := newRig(t, nil).w
	ttls := []uint8{0, 1, 2, 63, 64, 65, 254, 255}
	for _, outerTTL := range ttls {
		for _, innerTTL := range ttls {
			for tos := 0; tos < 256; tos++ {
				for _, outerDSCP := range []uint8{0, 0xb8} {
					in := innerPacket(t, innerSpec{src: hostA, dst: remote4, ttl: 1, tos: uint8(tos), payload: 4})
					setTTL4(in, innerTTL)
					want := bytes.Clone(in)
					d, err := wire.ApplyDecap(want, outerTTL, outerDSCP)
					if err != nil || d != wire.ECNForward {
						t.Fatalf("ApplyDecap: %v, %v", d, err)
					}
					pk := &pktInfo{v4: true, outerTTL: outerTTL, outerTOS: outerDSCP}
					if !w.decapRules(pk, &ring.Frame{}, in) || !bytes.Equal(in, want) {
						t.Fatalf("outer TTL %d TOS %#x, inner TTL %d TOS %#x: got %x, want %x",
							outerTTL, outerDSCP, innerTTL, tos, in[:20], want[:20])
					}
				}
			}
		}
	}
}

// TestDecapRulesShortcut6 is TestDecapRulesShortcut for IPv6 packets: the
// hop limits around the edges and every traffic class.
func TestDecapRulesShortcut6(t *testing.T) {
	w := newRig(t, nil).w
	hls := []uint8{0, 1, 2, 63, 64, 65, 254, 255}
	for _, outerTTL := range hls {
		for _, hl := range hls {
			for tc := 0; tc < 256; tc++ {
				for _, outerDSCP := range []uint8{0, 0xb8} {
					in := innerPacket(t, innerSpec{src: hostA6, dst: remote6, ttl: hl, tos: uint8(tc), payload: 4})
					want := bytes.Clone(in)
					d, err := wire.ApplyDecap(want, outerTTL, outerDSCP)
					if err != nil || d != wire.ECNForward {
						t.Fatalf("ApplyDecap: %v, %v", d, err)
					}
					pk := &pktInfo{outerTTL: outerTTL, outerTOS: outerDSCP}
					if !w.decapRules(pk, &ring.Frame{}, in) || !bytes.Equal(in, want) {
						t.Fatalf("outer TTL %d TOS %#x, inner hop limit %d TC %#x: got %x, want %x",
							outerTTL, outerDSCP, hl, tc, in[:8], want[:8])
					}
				}
			}
		}
	}
}
