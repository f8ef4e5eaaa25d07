package fastpath

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// TestGlean: with gleaning on for the site port, a delivered packet reports
// its inner source EID and outer source RLOC once per interval; without it,
// nothing is reported for packets that carry no nonce or LSBs.
func TestGlean(t *testing.T) {
	send := func(r *rig, src, peer netip.Addr) {
		in := innerPacket(t, innerSpec{src: src, dst: hostA, ttl: 50, payload: 32})
		r.fromCore(lispFrame(t, lispSpec{src: peer, dst: rlocLocal4, ttl: 60, iid: iidSite, flags: wire.FlagI, inner: in}))
		if len(drain(r.site)) != 1 {
			t.Fatal("packet not delivered")
		}
	}
	t.Run("off", func(t *testing.T) {
		r := newRig(t, nil)
		send(r, remote4, rlocRemote4)
		var o Observation
		if r.w.Observations().Pop(&o) {
			t.Fatalf("observation without gleaning: %+v", o)
		}
	})
	t.Run("on", func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.Ports[0].Glean = true })
		send(r, remote4, rlocRemote4)
		send(r, remote4, rlocRemote4) // same EID within the interval: no second report
		send(r, remote6, rlocRemote4)
		var got []Observation
		var o Observation
		for r.w.Observations().Pop(&o) {
			got = append(got, o)
		}
		if len(got) != 2 {
			t.Fatalf("%d gleaning reports, want 2: %+v", len(got), got)
		}
		for i, want := range []netip.Addr{remote4, remote6} {
			g := got[i]
			if !g.Glean || g.EID != want || g.RLOC != rlocRemote4 || g.IID != iidSite {
				t.Errorf("report %d = %+v, want EID %v behind %v", i, g, want, rlocRemote4)
			}
		}
	})
}
