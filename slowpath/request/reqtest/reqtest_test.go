package reqtest_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestClockOrder: timers run in deadline order (ties in scheduling order),
// each seeing its own deadline as the time; a timer a callback schedules
// within the span runs too; stopped timers do not run; Reset moves one.
func TestClockOrder(t *testing.T) {
	c := reqtest.NewClock(t0)
	var got []string
	at := func(name string) func(time.Time) {
		return func(now time.Time) { got = append(got, name+"@"+now.Sub(t0).String()) }
	}
	c.Schedule(t0.Add(3*time.Second), at("c"))
	c.Schedule(t0.Add(time.Second), func(now time.Time) {
		got = append(got, "a@"+now.Sub(t0).String())
		c.Schedule(now.Add(time.Second), at("chained"))
	})
	c.Schedule(t0.Add(3*time.Second), at("d"))
	c.Schedule(t0.Add(2*time.Second), at("stopped")).Stop()
	moved := c.Schedule(t0.Add(time.Hour), at("moved"))
	moved.Reset(t0.Add(4 * time.Second))
	c.Schedule(t0.Add(10*time.Second), at("later"))
	c.Advance(5 * time.Second)
	want := []string{"a@1s", "chained@2s", "c@3s", "d@3s", "moved@4s"}
	if !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if !c.Now().Equal(t0.Add(5*time.Second)) || c.Pending() != 1 {
		t.Fatalf("now %v, %d pending", c.Now(), c.Pending())
	}
	if next, ok := c.Next(); !ok || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next %v %v", next, ok)
	}
}

func TestSender(t *testing.T) {
	c := reqtest.NewClock(t0)
	dst := netip.MustParseAddrPort("192.0.2.1:4342")
	s := &reqtest.Sender{Clock: c, Port: 1234, Refuse: map[netip.AddrPort]bool{dst: true}}
	msg := []byte{1, 2}
	if err := s.Send(dst, msg, wire.TypeMapRequest); err == nil {
		t.Fatal("refused destination accepted")
	}
	other := netip.MustParseAddrPort("192.0.2.2:4342")
	if err := s.Send(other, msg, wire.TypeMapRequest); err != nil {
		t.Fatal(err)
	}
	msg[0] = 9
	sent := s.Take()
	if len(sent) != 1 || sent[0].Dst != other || sent[0].Msg[0] != 1 || !sent[0].At.Equal(t0) || len(s.Take()) != 0 {
		t.Fatalf("sent %+v", sent)
	}
	if p, ok := s.LocalPort(other); p != 1234 || !ok {
		t.Fatal("LocalPort")
	}
}
