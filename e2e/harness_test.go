// Package e2e runs real rlocd processes in lab namespaces (the demo
// topology, configs/lab/demo.yaml) and checks the LISP network end to end.
// It needs root, namespaces and XDP: without them the tests fail when the
// CI environment variable is set and skip otherwise.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/router"
)

// net is one running demo network.
type network struct {
	t     testing.TB
	lab   *lab.Lab
	dir   string
	rlocd string
	procs map[string]*lab.Proc
}

// tools holds rloc's commands compiled for this test binary run: each is
// built once per build environment and shared by the tests (every network
// used to link its own rlocd, 3-4 s each, a third of the package's time).
var tools struct {
	mu    sync.Mutex
	dir   string            // set by TestMain, removed when the run ends
	built map[string]string // name and CGO_ENABLED -> path
}

// buildTool returns the path of rloc's command name (cmd/name), compiled
// for this run with the test's CGO_ENABLED (TestLeastPrivilege sets it).
// Each build has a directory of its own, readable by everyone like its
// parent (a daemon may run as nobody), so the binary keeps its name.
func buildTool(t testing.TB, name string) string {
	t.Helper()
	key := name + " CGO_ENABLED=" + os.Getenv("CGO_ENABLED")
	tools.mu.Lock()
	defer tools.mu.Unlock()
	if p, ok := tools.built[key]; ok {
		return p
	}
	if tools.dir == "" {
		t.Fatal("buildTool: no directory for the built commands (TestMain sets it)")
	}
	dir := filepath.Join(tools.dir, strconv.Itoa(len(tools.built)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	c := exec.Command("go", "build", "-o", out, "github.com/rloc-router/rloc/cmd/"+name)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	if tools.built == nil {
		tools.built = map[string]string{}
	}
	tools.built[key] = out
	return out
}

// newNetwork brings up the demo topology (without daemons).
func newNetwork(t *testing.T) *network { return newNetworkB(t) }

// newNetworkB is newNetwork for tests and benchmarks.
func newNetworkB(t testing.TB) *network { return newLabNetwork(t, "../configs/lab/demo.yaml", "e2e") }

// newLabNetwork brings up the lab topology in file (without daemons), its
// run ID starting with id, and tears it down (daemons first, their logs
// shown when the test failed) at the end of the test.
func newLabNetwork(t testing.TB, file, id string) *network {
	t.Helper()
	netnstest.Require(t)
	if _, err := exec.LookPath("go"); err != nil {
		testkit.Unavailable(t, "no go tool to build rlocd: %v", err)
	}
	topo, err := lab.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := &network{t: t, dir: dir, rlocd: buildTool(t, "rlocd"), procs: map[string]*lab.Proc{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.lab, err = topo.UpWith(ctx, lab.Options{ID: id + netns.Suffix()})
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			testkit.Unavailable(t, "namespaces: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for name, p := range n.procs {
			_ = p.Stop(2 * time.Second)
			if t.Failed() {
				b, _ := os.ReadFile(n.logFile(name))
				t.Logf("--- rlocd %s log (last lines):\n%s", name, tail(string(b), 25))
			}
		}
		if err := n.lab.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (n *network) logFile(node string) string { return filepath.Join(n.dir, node+".log") }
func (n *network) sock(node string) string    { return filepath.Join(n.dir, node+".sock") }

// start writes yaml as node's configuration and starts rlocd in node.
func (n *network) start(node, yaml string) {
	n.t.Helper()
	cf := filepath.Join(n.dir, node+".yaml")
	yaml += fmt.Sprintf("mgmt: {socket: %q}\nlog: {level: debug}\n", n.sock(node))
	if err := os.WriteFile(cf, []byte(yaml), 0o644); err != nil {
		n.t.Fatal(err)
	}
	c, err := n.lab.Command(node, n.rlocd, "--config", cf)
	if err != nil {
		n.t.Fatal(err)
	}
	lf, err := os.OpenFile(n.logFile(node), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	c.Stdout, c.Stderr = lf, lf
	p, err := n.lab.StartCmd(c)
	lf.Close()
	if err != nil {
		n.t.Fatal(err)
	}
	n.procs[node] = p
	// Bounded readiness wait; generous because a VM whose cores the
	// hypervisor steals (40 % seen here) can take seconds to start a daemon.
	n.waitFor(30*time.Second, "rlocd "+node+" management socket", func() bool {
		select {
		case <-p.Done():
			b, _ := os.ReadFile(n.logFile(node))
			n.t.Fatalf("rlocd %s exited: %v\n%s", node, p.Wait(), tail(string(b), 20))
		default:
		}
		// Ready once it accepts a connection: the socket file exists
		// from bind(2), before listen(2), and a connection in between
		// is refused.
		c, err := net.Dial("unix", n.sock(node))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// stop stops node's rlocd: gracefully (SIGTERM) or by SIGKILL.
func (n *network) stop(node string, graceful bool) {
	p := n.procs[node]
	if p == nil {
		return
	}
	if graceful {
		_ = p.Stop(3 * time.Second)
	} else {
		_ = p.Cmd.Process.Kill()
		<-p.Done()
	}
	delete(n.procs, node)
	_ = os.Remove(n.sock(node))
}

// client is an HTTP client for node's management socket.
func (n *network) client(node string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", n.sock(node))
		}}}
}

// get reads an API path of node's rlocd into out.
func (n *network) get(node, path string, out any) error {
	resp, err := n.client(node).Get("http://rlocd" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// do sends an API request with a JSON body to node's rlocd and decodes a
// 200 answer into out.
func (n *network) do(node, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://rlocd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := n.client(node).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func (n *network) stats(node string) router.Stats {
	n.t.Helper()
	var s router.Stats
	if err := n.get(node, "/v1/stats", &s); err != nil {
		n.t.Fatalf("%s stats: %v", node, err)
	}
	return s
}

func (n *network) registrations() []router.RegistrationInfo {
	n.t.Helper()
	var r []router.RegistrationInfo
	if err := n.get("msmr", "/v1/registrations", &r); err != nil {
		n.t.Fatalf("registrations: %v", err)
	}
	return r
}

func (n *network) mapCache(node string) []router.MapCacheEntry {
	n.t.Helper()
	var es []router.MapCacheEntry
	if err := n.get(node, "/v1/map-cache", &es); err != nil {
		n.t.Fatalf("%s map-cache: %v", node, err)
	}
	return es
}

func (n *network) waitFor(d time.Duration, what string, cond func() bool) {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			n.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func msgCount(s router.Stats, typ string) router.MsgCount {
	for _, m := range s.Messages {
		if m.Type == typ {
			return m
		}
	}
	return router.MsgCount{Type: typ}
}

// Configurations with short intervals.

func msmrYAML(timeout string) string {
	return `name: msmr
roles: [map-server, map-resolver]
control: {rate_limit: {map_request: {per_source: 200, burst: 50}, map_register: {per_source: 200, burst: 50}, other: {per_source: 200, burst: 50}}}
sites:
  - name: site1
    keys: [{id: 1, secret: key-one}]
    prefixes: [{eid: 10.1.0.0/24}, {eid: "2001:db8:1::/64"}, {eid: 10.11.0.0/24}, {eid: 10.12.0.0/24}]
  - name: site2
    keys: [{id: 1, secret: key-two}]
    prefixes: [{eid: 10.2.0.0/24}, {eid: "2001:db8:2::/64"}]
map_server: {registration_timeout: ` + timeout + `}
`
}

func xtrYAML(name, site, secret string, probe string) string {
	r4, r6 := "192.0.2."+site, "2001:db8:ff::"+site
	return fmt.Sprintf(`name: %s
roles: [itr, etr]
rlocs: [%s, "%s"]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database:
  - {eid: 10.%s.0.0/24, rlocs: [{addr: %s, priority: 1}, {addr: "%s", priority: 2}]}
  - {eid: "2001:db8:%s::/64", rlocs: [{addr: %s, priority: 1}, {addr: "%s", priority: 2}]}
map_servers: [{addr: 192.0.2.100, key: {id: 1, secret: %s}}]
map_resolvers: [192.0.2.100]
petrs: [192.0.2.3]
etr: {register_interval: 1s}
itr: {probe_interval: %s, probe_misses: 2, retransmit_interval: 200ms}
hold: {hold_time: 3s}
`, name, r4, r6, site, r4, r6, site, r4, r6, secret, probe)
}

const pxtrYAML = `name: pxtr
roles: [pxtr]
rlocs: [192.0.2.3, "2001:db8:ff::3"]
interfaces: [{name: nl0, side: site}, {name: core0, side: core}]
map_resolvers: [192.0.2.100]
`

// linkDrops returns the kernel's dropped counters of node's interface
// ifname (`ip -s link`): with the XSK counters of the daemons' stats they
// say where packets a test missed were lost (a veth whose peer's NAPI ring
// overflowed counts them as tx dropped on the sending side).
func (n *network) linkDrops(node, ifname string) (rx, tx uint64) {
	n.t.Helper()
	c, err := n.lab.Command(node, "ip", "-s", "-j", "link", "show", "dev", ifname)
	if err != nil {
		return 0, 0
	}
	out, err := c.Output()
	if err != nil {
		return 0, 0
	}
	var links []struct {
		Stats struct {
			RX struct{ Dropped uint64 } `json:"rx"`
			TX struct{ Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if json.Unmarshal(out, &links) != nil || len(links) != 1 {
		return 0, 0
	}
	return links[0].Stats.RX.Dropped, links[0].Stats.TX.Dropped
}

// logLinkDrops logs the dropped counters of the given node/interface pairs.
func (n *network) logLinkDrops(pairs ...string) {
	n.t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		rx, tx := n.linkDrops(pairs[i], pairs[i+1])
		n.t.Logf("%s %s: kernel rx dropped %d, tx dropped %d", pairs[i], pairs[i+1], rx, tx)
	}
}

// pacer paces a sender at rate packets per second, sleeping every 32
// packets. After a stall (the sender not scheduled, or the whole VM not
// running: hypervisor steal reached 40 % on the 2-core test machines) it
// does not catch up with a back-to-back burst, which would offer far more
// than rate; it resumes at rate from where it is.
type pacer struct {
	rate  int
	start time.Time
	n     int
	// Stalls counts the times the schedule was given up.
	Stalls int
}

func newPacer(rate int) *pacer { return &pacer{rate: rate, start: time.Now()} }

// sent accounts for one packet sent.
func (p *pacer) sent() {
	p.n++
	if p.n%32 != 0 {
		return
	}
	d := time.Until(p.start.Add(time.Duration(p.n) * time.Second / time.Duration(p.rate)))
	switch {
	case d > 0:
		time.Sleep(d)
	case d < -50*time.Millisecond:
		p.start, p.n = time.Now(), 0
		p.Stalls++
	}
}

// refused runs rlocd in node with the configuration yaml (written to file
// name in the network's directory) and returns what it printed, failing the
// test if it started instead of refusing. Bounded: an rlocd that does not
// refuse is killed after 30 s.
func (n *network) refused(node, name, yaml string) string {
	n.t.Helper()
	cf := filepath.Join(n.dir, name)
	if err := os.WriteFile(cf, []byte(yaml), 0o644); err != nil {
		n.t.Fatal(err)
	}
	cmd, err := n.lab.Command(node, n.rlocd, "--config", cf)
	if err != nil {
		n.t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	out, err := cmd.CombinedOutput()
	timer.Stop()
	if err == nil {
		n.t.Fatalf("rlocd in %s with %s exited 0:\n%s", node, name, out)
	}
	return string(out)
}
