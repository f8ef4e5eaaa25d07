package resolve

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// fakeMR is a Map-Resolver on loopback: it answers every ECM'd Map-Request
// at the ITR-RLOC and inner source port, first with a reply carrying a
// wrong nonce (to be ignored), then with the right one: one locator for
// 10.1.0.0/16, negative for anything else; 10.9.9.9 gets no answer.
func fakeMR(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 65536)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			var ecm wire.ECM
			var req wire.MapRequest
			if ecm.Parse(b[:n]) != nil || req.Parse(ecm.Message) != nil || len(req.ITRRLOCs) == 0 {
				continue
			}
			_, eid, ok := req.Records[0].Prefix()
			if !ok || eid.Addr() == netip.MustParseAddr("10.9.9.9") {
				continue
			}
			rec := wire.Record{TTL: 1, MaskLen: 16, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0")),
				Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}
			if !netip.MustParsePrefix("10.1.0.0/16").Contains(eid.Addr()) {
				rec = wire.Record{TTL: 1, MaskLen: 32, EID: wire.IPAddress(eid.Addr()), Action: wire.ActionNativelyForward}
			}
			to := netip.AddrPortFrom(req.ITRRLOCs[0].IP, ecm.SrcPort)
			stale := wire.MapReply{Nonce: req.Nonce, Records: []wire.Record{rec}}
			stale.Nonce[0]++
			for _, m := range []wire.MapReply{stale, {Nonce: req.Nonce, Records: []wire.Record{rec}}} {
				out, _ := m.Append(nil)
				_, _ = c.WriteToUDPAddrPort(out, to)
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestResolve(t *testing.T) {
	c, err := Dial(fakeMR(t), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Resolve(0, netip.MustParseAddr("10.1.2.3"), 2*time.Second)
	if err != nil || r.Negative() || r.Ignored != 1 || r.RTT <= 0 || r.Record.Locators[0].Address.IP != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("reply %+v, %v", r, err)
	}
	if r, err = c.Resolve(7, netip.MustParseAddr("10.2.0.1"), 2*time.Second); err != nil || !r.Negative() || r.Record.Action != wire.ActionNativelyForward {
		t.Fatalf("negative reply %+v, %v", r, err)
	}
	if _, err = c.Resolve(0, netip.MustParseAddr("10.9.9.9"), 50*time.Millisecond); !errors.Is(err, ErrNoReply) {
		t.Fatalf("unanswered: %v", err)
	}
}

func TestMeasure(t *testing.T) {
	c, err := Dial(fakeMR(t), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var before []int
	eids := []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.9.9.9")}
	s, err := Measure(c, Options{N: 6, EIDs: eids, Timeout: 50 * time.Millisecond,
		Before: func(i int) error { before = append(before, i); return nil },
		Check: func(i int, r *Reply) error {
			if i%2 != 0 || r.Negative() {
				return errors.New("unexpected reply")
			}
			return nil
		}})
	if err != nil || len(s.Samples) != 3 || s.Lost != 3 || len(before) != 6 {
		t.Fatalf("series %+v (before %v), %v", s, before, err)
	}
	if _, err := Measure(c, Options{N: 1, EIDs: eids[:1], Check: func(int, *Reply) error { return errors.New("no") }}); err == nil {
		t.Fatal("a failed check did not end the series")
	}
	if _, err := Measure(c, Options{N: 0, EIDs: eids}); err == nil {
		t.Fatal("N = 0 accepted")
	}
}

type metrics map[string]float64

func (m metrics) ReportMetric(v float64, unit string) { m[unit] = v }

func TestSummarize(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	sum := Summarize(s)
	if sum.N != 100 || sum.Min != time.Millisecond || sum.P50 != 50*time.Millisecond || sum.P90 != 90*time.Millisecond ||
		sum.P99 != 99*time.Millisecond || sum.Max != 100*time.Millisecond || s[0] != 100*time.Millisecond {
		t.Fatalf("summary %v (input changed: %v)", sum, s[0])
	}
	if got := Percentile([]time.Duration{5, 7}, 50); got != 5 {
		t.Fatalf("p50 of two: %v", got)
	}
	if (Summarize(nil) != Summary{}) || Percentile(nil, 50) != 0 {
		t.Fatal("empty input")
	}
	m := metrics{}
	sum.Report(m, "cold")
	if m["cold-p50-ms"] != 50 || m["cold-p90-ms"] != 90 || m["cold-p99-ms"] != 99 || len(m) != 3 {
		t.Fatalf("metrics %v", m)
	}
}
