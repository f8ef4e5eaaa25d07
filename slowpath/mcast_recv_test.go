package slowpath

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestReceiverGroupsPublished: the groups with site receivers are handed
// to MulticastConfig.ReceiverGroups as they join and leave.
func TestReceiverGroupsPublished(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	var last []ReceiverGroup
	calls := 0
	r.tweak = func(c *MulticastConfig) {
		c.ReceiverGroups = func(gs []ReceiverGroup) {
			mu.Lock()
			defer mu.Unlock()
			last, calls = slices.Clone(gs), calls+1
		}
	}
	_, l := r.startETR("192.0.2.53")
	got := func() []ReceiverGroup {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(last)
	}
	sg := ReceiverGroup{Source: netip.MustParseAddr("10.1.1.1"), Group: netip.MustParseAddr("232.1.1.1")}
	l.inject(t, join("10.1.1.1", "232.1.1.1"))
	waitFor(t, 5*time.Second, "the (S,G) published", func() bool { return slices.Equal(got(), []ReceiverGroup{sg}) })
	l.inject(t, block("10.1.1.1", "232.1.1.1"))
	waitFor(t, 5*time.Second, "the leave published", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 2 && len(last) == 0
	})
}

// TestMixedStarAndSourceReceivers: one ETR has (*,G) receivers, another
// (S,G) receivers; the ITR's (S,G) request gets both, and each leave
// reaches it in an unsolicited Map-Notify.
func TestMixedStarAndSourceReceivers(t *testing.T) {
	r := newRig(t)
	r.startITR()
	_, la := r.startETR("192.0.2.61")
	_, lb := r.startETR("192.0.2.62")
	g := grpEID.Addr()
	v2, _ := wire.AppendIGMPv2(nil, g, false)
	la.ch <- v2
	lb.inject(t, join(srcEID.Addr().String(), g.String()))
	waitFor(t, 5*time.Second, "(*,G) and (S,G) registered", func() bool {
		return len(r.ms.McastRLE(0, netip.Prefix{}, grpEID)) == 1 && len(r.ms.McastRLE(0, srcEID, grpEID)) == 1
	})
	r.itr.Miss(MissEvent{Dst: g, Src: srcEID.Addr()})
	r.waitITR("the ITR replicating to both", addrs("192.0.2.61", "192.0.2.62"))
	leave, _ := wire.AppendIGMPv2(nil, g, true)
	la.ch <- leave
	r.waitITR("the (*,G) receivers gone", addrs("192.0.2.62"))
	lb.inject(t, block(srcEID.Addr().String(), g.String()))
	r.waitITR("the (S,G) receivers gone", nil)
}

// TestSourceReceiversAfterStarAnswer: the ITR was answered for (*,G); when
// (S,G) receivers register later, it is told the (S,G) with both sets of
// receivers and installs it next to the (*,G).
func TestSourceReceiversAfterStarAnswer(t *testing.T) {
	r := newRig(t)
	r.startITR()
	_, la := r.startETR("192.0.2.63")
	_, lb := r.startETR("192.0.2.64")
	g := grpEID.Addr()
	v2, _ := wire.AppendIGMPv2(nil, g, false)
	la.ch <- v2
	waitFor(t, 5*time.Second, "(*,G) registered", func() bool { return len(r.ms.McastRLE(0, netip.Prefix{}, grpEID)) == 1 })
	r.itr.Miss(MissEvent{Dst: g, Src: srcEID.Addr()})
	r.waitITR("the ITR using (*,G)", addrs("192.0.2.63"))
	lb.inject(t, join(srcEID.Addr().String(), g.String()))
	r.waitITR("the (S,G) installed with both", addrs("192.0.2.63", "192.0.2.64"))
	r.inst.mu2.Lock()
	got := r.inst.mc[len(r.inst.mc)-1]
	r.inst.mu2.Unlock()
	if got.Source != srcEID || got.Group != grpEID {
		t.Fatalf("installed (%v, %v), want the (S,G)", got.Source, got.Group)
	}
}
