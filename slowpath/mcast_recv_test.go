package slowpath

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
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
