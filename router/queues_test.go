package router

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
)

// TestCheckQueues: an interface's queues against its NIC's. A veth pair with
// two queues (channels known): one queue is refused unless partial, two
// pass, three are refused. A bridge made with three queues (no channels,
// only an upper bound): one queue passes with a warning naming the device,
// four are refused.
func TestCheckQueues(t *testing.T) {
	s := netns.Suffix()
	a, b := netnstest.New(t, "rq-a"), netnstest.New(t, "rq-b")
	veth, bridge := "qv"+s, "qb"+s
	if err := netns.VethQueues(a, veth, b, "qp"+s, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.AddBridge(bridge, 3); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := &Router{log: slog.New(slog.NewTextHandler(&logs, nil))}
	err := a.Do(func() error {
		for _, c := range []struct {
			ifname  string
			queues  int
			partial bool
			want    string // "" accepted
			warn    bool
		}{
			{veth, 1, false, "interfaces[0].queues: 1, but " + veth + " spreads what it receives over 2 queues", false},
			{veth, 1, true, "", false},
			{veth, 2, false, "", false},
			{veth, 3, false, "interfaces[0].queues: 3, but " + veth + " has 2 receive queue(s)", false},
			{bridge, 1, false, "", true},
			{bridge, 4, false, "has 3 receive queue(s)", false},
		} {
			logs.Reset()
			err := r.checkQueues("interfaces[0]", c.ifname, c.queues, c.partial)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s, queues %d, partial %v: %v, want accepted", c.ifname, c.queues, c.partial, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("%s, queues %d, partial %v: %v, want %q", c.ifname, c.queues, c.partial, err, c.want)
			}
			if got := strings.Contains(logs.String(), "device_queues=3"); got != c.warn {
				t.Errorf("%s, queues %d: warning logged %v, want %v: %q", c.ifname, c.queues, got, c.warn, logs.String())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWorkerConfigs: one worker per queue, pinned round-robin to cpus when
// given (unpinned otherwise), each with the xdp section's busy_poll and
// kick_delay and the PETRs' negative-mapping choice.
func TestWorkerConfigs(t *testing.T) {
	ports := make([][]fastpath.PortConfig, 3)
	r := &Router{cfg: Config{CPUs: []int{2, 5}, XDP: XDPOptions{BusyPoll: true, KickDelay: 50 * time.Microsecond},
		PETRs: []netip.Addr{netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8::9")}}}
	wcs := r.workerConfigs(ports)
	if len(wcs) != 3 {
		t.Fatalf("%d worker configs for 3 queues", len(wcs))
	}
	for q, wc := range wcs {
		if want := []int{2, 5, 2}[q]; wc.ID != q || wc.CPU != want || !wc.Pin {
			t.Errorf("worker %d: id %d cpu %d pin %v, want cpu %d pinned", q, wc.ID, wc.CPU, wc.Pin, want)
		}
		if !wc.BusyPoll || wc.KickDelay != 50*time.Microsecond {
			t.Errorf("worker %d: busy poll %v, kick delay %v", q, wc.BusyPoll, wc.KickDelay)
		}
		if wc.Negative != fastpath.NegativePETR || wc.PETR4 != netip.MustParseAddr("192.0.2.9") || wc.PETR6 != netip.MustParseAddr("2001:db8::9") {
			t.Errorf("worker %d: negative %v, PETRs %v %v", q, wc.Negative, wc.PETR4, wc.PETR6)
		}
	}
	r = &Router{}
	for q, wc := range r.workerConfigs(ports[:2]) {
		if wc.Pin || wc.CPU != -1 || wc.BusyPoll || wc.KickDelay != 0 || wc.Negative != fastpath.NegativeNative {
			t.Errorf("default worker %d: %+v", q, wc)
		}
	}
}
