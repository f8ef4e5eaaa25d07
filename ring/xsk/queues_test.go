package xsk

import (
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
)

// TestRxQueues: the receive queues a NIC spreads traffic over, from the
// driver's channels (veth with one and with three queues), else the kernel's
// queue count, flagged as not from channels (a bridge made with three), and
// a clear error for a missing interface or an impossible name.
func TestRxQueues(t *testing.T) {
	s := netns.Suffix()
	a, b := netnstest.New(t, "qa"), netnstest.New(t, "qb")
	one, three, bridge := "q1"+s, "q3"+s, "qb"+s
	if err := netns.Veth(a, one, b, "p1"+s); err != nil {
		t.Fatal(err)
	}
	if err := netns.VethQueues(a, three, b, "p3"+s, 3); err != nil {
		t.Fatal(err)
	}
	if err := a.AddBridge(bridge, 3); err != nil {
		t.Fatal(err)
	}
	err := a.Do(func() error {
		for _, c := range []struct {
			name     string
			want     int
			channels bool
		}{{one, 1, true}, {three, 3, true}, {bridge, 3, false}} {
			n, ch, err := RxQueues(c.name)
			if err != nil || n != c.want || ch != c.channels {
				t.Errorf("RxQueues(%s) = %d, %v, %v; want %d, %v", c.name, n, ch, err, c.want, c.channels)
			}
		}
		if _, _, err := RxQueues("nx" + s); err == nil || !strings.Contains(err.Error(), "no such interface") {
			t.Errorf("missing interface: %v, want \"no such interface\"", err)
		}
		if _, _, err := RxQueues(strings.Repeat("x", 16)); err == nil || !strings.Contains(err.Error(), "longer than 15") {
			t.Errorf("16-byte name: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
