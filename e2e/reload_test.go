package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// TestReloadAndManagement: SIGHUP makes xtr1 register a mapping added to
// its configuration file while a cross-site ping loses nothing; a reload
// that needs a restart is refused and changes nothing; rlocctl adds and
// deletes a database mapping; /metrics of an ITR has the fast-path
// counters, control counters and a non-empty resolution histogram.
func TestReloadAndManagement(t *testing.T) {
	n := newNetwork(t)
	n.start("msmr", msmrYAML("30s"))
	const metrics = "metrics: {listen: \"127.0.0.1:9100\"}\n"
	x1 := xtrYAML("xtr1", "1", "key-one", "0s") + metrics
	n.start("xtr1", x1)
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))
	n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
	if got, err := n.lab.Ping("h2", h1v4, 2, 2*time.Second); err != nil || got != 2 {
		t.Fatalf("h2 -> h1 before the reload: %d/2, %v", got, err)
	}

	t.Run("SIGHUP adds a mapping without losing traffic", func(t *testing.T) {
		type result struct {
			got int
			err error
		}
		const count = 60 // 3 s at 50 ms
		pings := make(chan result, 2)
		for _, dst := range []string{"10.1.0.10", "2001:db8:1::10"} {
			go func() {
				got, err := n.lab.Ping("h2", mustAddr(dst), count, 2*time.Second)
				pings <- result{got, err}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		added := strings.Replace(x1, "map_servers:",
			"  - {eid: 10.11.0.0/24, rlocs: [{addr: 192.0.2.1, priority: 1}]}\nmap_servers:", 1)
		if added == x1 {
			t.Fatal("could not edit the configuration")
		}
		n.rewrite("xtr1", added)
		n.signal("xtr1", syscall.SIGHUP)
		n.waitFor(5*time.Second, "msmr to show 10.11.0.0/24", func() bool {
			for _, r := range n.registrations() {
				if r.EID == "10.11.0.0/24" && r.Site == "site1" && len(r.RLOCs) == 1 && r.RLOCs[0] == "192.0.2.1" {
					return true
				}
			}
			return false
		})
		for range 2 {
			r := <-pings
			if r.err != nil || r.got != count {
				t.Errorf("ping across the reload: %d/%d, %v", r.got, count, r.err)
			}
		}
		var db []router.DatabaseMapping
		if err := n.get("xtr1", "/v1/database", &db); err != nil || len(db) != 3 {
			t.Errorf("xtr1 database after reload: %+v, %v", db, err)
		}
	})

	t.Run("reload needing a restart is refused", func(t *testing.T) {
		n.rewrite("xtr1", strings.Replace(x1, "rlocs: [192.0.2.1,", "rlocs: [192.0.2.11,", 1))
		n.signal("xtr1", syscall.SIGHUP)
		n.waitFor(5*time.Second, "the refusal in xtr1's log", func() bool {
			b, _ := os.ReadFile(n.logFile("xtr1"))
			return strings.Contains(string(b), "reload failed") && strings.Contains(string(b), "rlocs")
		})
		var db []router.DatabaseMapping
		if err := n.get("xtr1", "/v1/database", &db); err != nil || len(db) != 3 {
			t.Errorf("xtr1 database after a refused reload: %+v, %v", db, err)
		}
		if got, err := n.lab.Ping("h2", h1v4, 3, 2*time.Second); err != nil || got != 3 {
			t.Errorf("h2 -> h1 after a refused reload: %d/3, %v", got, err)
		}
	})

	t.Run("rlocctl database add and del", func(t *testing.T) {
		ctl := buildTool(t, "rlocctl")
		run := func(args ...string) string {
			t.Helper()
			out, err := exec.Command(ctl, append([]string{"-s", n.sock("xtr1")}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("rlocctl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		if out := run("database", "add", "0", "10.12.0.0/24", "192.0.2.1/1/100"); !strings.Contains(out, "added") {
			t.Fatalf("database add: %s", out)
		}
		out := run("database")
		if !regexp.MustCompile(`(?m)^0\s+10\.12\.0\.0/24\s+192\.0\.2\.1 1/100\s+-$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^0\s+10\.1\.0\.0/24\s+192\.0\.2\.1 1/100, 2001:db8:ff::1 2/100\s+-$`).MatchString(out) {
			t.Fatalf("database table:\n%s", out)
		}
		n.waitFor(5*time.Second, "msmr to show 10.12.0.0/24", func() bool {
			for _, r := range n.registrations() {
				if r.EID == "10.12.0.0/24" {
					return true
				}
			}
			return false
		})
		msOut, err := exec.Command(ctl, "-s", n.sock("msmr"), "registrations").CombinedOutput()
		if err != nil || !regexp.MustCompile(`(?m)^site1\s+0\s+10\.12\.0\.0/24\s+192\.0\.2\.1\s+192\.0\.2\.1:4342\s+\S+$`).Match(msOut) {
			t.Errorf("rlocctl registrations on msmr: %v\n%s", err, msOut)
		}
		if out := run("database", "del", "0", "10.12.0.0/24"); strings.TrimSpace(out) != "deleted" {
			t.Fatalf("database del: %s", out)
		}
		if out := run("database"); strings.Contains(out, "10.12.0.0/24") {
			t.Errorf("deleted mapping still listed:\n%s", out)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := n.scrape("xtr1", "127.0.0.1:9100")
		positive := []string{
			`rloc_fastpath_packets_total{event="rx"}`,
			`rloc_fastpath_packets_total{event="encap"}`,
			`rloc_fastpath_packets_total{event="decap"}`,
			`rloc_fastpath_packets_total{event="held"}`,
			`rloc_control_messages_total{result="sent",type="ecm"}`,
			`rloc_control_messages_total{result="received",type="map_reply"}`,
			`rloc_control_messages_total{result="sent",type="map_register"}`,
			`rloc_control_messages_total{result="received",type="map_notify"}`,
			`rloc_map_cache_entries{kind="all"}`,
			`rloc_map_cache_operations_total{op="inserted"}`,
			`rloc_control_events_total{event="resolutions"}`,
			`rloc_resolution_latency_seconds_count`,
			`rloc_resolution_latency_seconds_sum`,
			`rloc_resolution_latency_seconds_bucket{le="+Inf"}`,
		}
		for _, k := range positive {
			if v, ok := m[k]; !ok || v <= 0 {
				t.Errorf("%s = %v (present %v), want > 0", k, v, ok)
			}
		}
		for _, k := range []string{`rloc_fastpath_dropped_total{reason="hold_timeout"}`, `rloc_control_messages_total{result="bad_auth",type="map_notify"}`} {
			if v, ok := m[k]; !ok || v != 0 {
				t.Errorf("%s = %v (present %v), want 0", k, v, ok)
			}
		}
		buckets := 0
		for k := range m {
			if strings.HasPrefix(k, "rloc_resolution_latency_seconds_bucket{") {
				buckets++
			}
		}
		if buckets < 5 {
			t.Errorf("resolution histogram has %d buckets", buckets)
		}
		// Every AF_XDP socket's counters, by interface and queue: xtr1
		// sent frames on one of them, and the kernel's six counters are
		// there for each socket.
		kernel, sockets, short := map[string]int{}, 0, 0
		var sent float64
		for k, v := range m {
			if strings.HasPrefix(k, "rloc_xsk_kernel_total{") {
				kernel[k[strings.Index(k, "counter="):strings.Index(k, ",interface=")]]++
			}
			if strings.HasPrefix(k, "rloc_xsk_socket_total{counter=\"fill_short\",") {
				short++
			}
			if strings.HasPrefix(k, "rloc_xsk_socket_total{counter=\"tx_frames\",") {
				sockets++
				sent += v
			}
		}
		if sockets < 2 || sent <= 0 {
			t.Errorf("rloc_xsk_socket_total tx_frames: %d sockets, %v frames; want every socket and frames sent", sockets, sent)
		}
		if short != sockets {
			t.Errorf("rloc_xsk_socket_total{counter=\"fill_short\"}: %d series, want one per socket (%d)", short, sockets)
		}
		for _, c := range []string{"rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full", "rx_fill_ring_empty_descs", "tx_ring_empty_descs"} {
			if kernel["counter=\""+c+"\""] != sockets {
				t.Errorf("rloc_xsk_kernel_total{counter=%q}: %d series, want one per socket (%d)", c, kernel["counter=\""+c+"\""], sockets)
			}
		}
	})
}

// rewrite replaces node's configuration file (as start wrote it).
func (n *network) rewrite(node, yaml string) {
	n.t.Helper()
	yaml += fmt.Sprintf("mgmt: {socket: %q}\nlog: {level: debug}\n", n.sock(node))
	if err := os.WriteFile(filepath.Join(n.dir, node+".yaml"), []byte(yaml), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *network) signal(node string, s os.Signal) {
	n.t.Helper()
	p := n.procs[node]
	if p == nil {
		n.t.Fatalf("no rlocd in %s", node)
	}
	if err := p.Cmd.Process.Signal(s); err != nil {
		n.t.Fatal(err)
	}
}

// scrape fetches /metrics from addr inside node's namespace (the
// connection is opened there) and returns the samples by series.
func (n *network) scrape(node, addr string) map[string]float64 {
	n.t.Helper()
	var c net.Conn
	if err := n.lab.Node(node).Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		n.t.Fatalf("metrics of %s: %v", node, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		n.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		n.t.Fatalf("metrics of %s: %s", node, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			n.t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
