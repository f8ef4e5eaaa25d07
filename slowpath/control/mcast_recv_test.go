package control

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
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

// TestThousandsOfRLEEntriesRefused: a registration with an RLE of 3000
// entries (a 30 KB datagram, beyond the 9216-byte receive buffer) is
// dropped with a log line naming the cause and counted as Oversize;
// nothing is merged and the Map-Server keeps serving.
func TestThousandsOfRLEEntriesRefused(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	ms := newEngine(t, Config{
		MapServer: &MapServerConfig{Sites: []SiteConfig{mcSite()}},
		Multicast: &MulticastConfig{Key: mcKey},
		Logger:    slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)),
	}, nil)
	var nodes []wire.RLENode
	for i := range 3000 {
		nodes = append(nodes, wire.RLENode{Level: 128, Address: wire.IPAddress(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))})
	}
	reg := wire.MapRegister{Merge: true, Nonce: newNonce(), Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false),
		Records: []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), 3, nodes)}}
	b, err := reg.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) <= 9216 {
		t.Fatalf("the registration is only %d bytes", len(b))
	}
	conn := listenUDP(t)
	if _, err := conn.WriteToUDPAddrPort(b, ms.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the oversize datagram counted", func() bool { return ms.Stats().Oversize == 1 })
	mu.Lock()
	logged := strings.Contains(logs.String(), "larger than the receive buffer")
	mu.Unlock()
	if !logged {
		t.Errorf("no log line for the oversize registration: %s", logs.String())
	}
	if got := ms.McastRLE(0, srcEID, grpEID); len(got) != 0 {
		t.Fatalf("merged %d entries of an oversize registration", len(got))
	}
	// Still serving: a registration that fits is merged.
	small := reg
	small.Nonce = newNonce()
	small.Records = []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), 3, nodes[:2])}
	if b, err = small.AppendSigned(nil, []byte(testKey.Secret)); err != nil {
		t.Fatal(err)
	}
	conn.WriteToUDPAddrPort(b, ms.Addr())
	waitFor(t, 3*time.Second, "a normal registration merged", func() bool { return len(ms.McastRLE(0, srcEID, grpEID)) == 2 })
}
