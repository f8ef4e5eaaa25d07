package router

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

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
