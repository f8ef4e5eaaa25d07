// Package ospftest runs FRR's zebra and ospfd (with the OSPF API server)
// inside a test's network namespace: the independent OSPF implementation
// the discovery tests flood their opaque LSAs through. A missing FRR goes
// through testkit.Unavailable (scripts/deps.sh ospfd installs it).
package ospftest

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/frrtest"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
)

// Dir is where Debian's frr package puts the daemons (not on PATH).
const Dir = "/usr/lib/frr"

// Require checks that the test can run FRR's OSPF daemons in namespaces.
func Require(t testing.TB) {
	t.Helper()
	netnstest.Require(t)
	for _, d := range []string{"zebra", "ospfd"} {
		if _, err := os.Stat(filepath.Join(Dir, d)); err != nil {
			testkit.Unavailable(t, "FRR %s missing (scripts/deps.sh ospfd installs frr): %v", d, err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		testkit.Unavailable(t, "FRR vtysh missing (scripts/deps.sh ospfd installs frr): %v", err)
	}
}

// Router is one zebra + ospfd pair in a namespace.
type Router struct {
	NS *netns.NS
	// Dir holds the configuration, sockets, pid files and logs.
	Dir string
	// RouterID is ospfd's router ID.
	RouterID netip.Addr
	procs    []*exec.Cmd
}

// Config is what Start puts in ospfd's configuration.
type Config struct {
	// RouterID is ospfd's router ID.
	RouterID netip.Addr
	// Interfaces run OSPF in area 0 as point-to-point links with a 1 s
	// hello, 3 s dead and 1 s retransmit interval (adjacencies are Full in
	// seconds, even when the first Database Description is lost).
	Interfaces []string
	// Broadcast runs the interfaces as broadcast networks instead (a
	// shared segment with more than two routers; a DR is elected after
	// the 3 s wait).
	Broadcast bool
	// Passive interfaces are advertised into area 0 without adjacencies
	// (the site prefixes behind an xTR).
	Passive []string
}

// Start runs zebra and ospfd (API server on, client-API debugging to
// ospfd.log) in ns and stops them in t.Cleanup; their logs are printed
// when the test failed.
func Start(t testing.TB, ns *netns.NS, cfg Config) *Router {
	t.Helper()
	Require(t)
	// The daemons drop privileges to the frr user: a directory of their
	// own it can write.
	dir := frrtest.Dir(t, ns, "ospftest")
	r := &Router{NS: ns, RouterID: cfg.RouterID, Dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"ospfd.log", "ospfd.out", "zebra.out", "zebra.log"} {
				b, _ := os.ReadFile(filepath.Join(r.Dir, f))
				t.Logf("%s %s:\n%s", ns.Name, f, tail(b, 60))
			}
		}
	})
	var conf strings.Builder
	fmt.Fprintf(&conf, "hostname %s\nlog file %s debugging\ndebug ospf client-api\n", ns.Name, filepath.Join(r.Dir, "ospfd.log"))
	for _, ifn := range cfg.Interfaces {
		network := " ip ospf network point-to-point\n"
		if cfg.Broadcast {
			network = ""
		}
		fmt.Fprintf(&conf, "interface %s\n ip ospf area 0\n%s ip ospf hello-interval 1\n ip ospf dead-interval 3\n ip ospf retransmit-interval 1\nexit\n", ifn, network)
	}
	for _, ifn := range cfg.Passive {
		fmt.Fprintf(&conf, "interface %s\n ip ospf area 0\n ip ospf passive\nexit\n", ifn)
	}
	fmt.Fprintf(&conf, "router ospf\n ospf router-id %s\n capability opaque\n timers throttle lsa all 0\n timers lsa min-arrival 0\n timers throttle spf 0 50 200\nexit\n", cfg.RouterID)
	write := func(name, text string) string {
		p := filepath.Join(r.Dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zconf := write("zebra.conf", fmt.Sprintf("hostname %s\nlog file %s\n", ns.Name, filepath.Join(r.Dir, "zebra.log")))
	oconf := write("ospfd.conf", conf.String())
	zserv := filepath.Join(r.Dir, "zserv.api")
	common := []string{"-N", ns.Name, "--vty_socket", r.Dir, "-P", "0"}
	r.start(t, "zebra", append([]string{"-f", zconf, "-i", filepath.Join(r.Dir, "zebra.pid"), "-z", zserv}, common...)...)
	// ospfd connects to zebra's socket; wait for it to exist.
	waitLong(t, "zebra's zserv socket", func() error { _, err := os.Stat(zserv); return err })
	r.start(t, "ospfd", append([]string{"-a", "-f", oconf, "-i", filepath.Join(r.Dir, "ospfd.pid"), "-z", zserv}, common...)...)
	return r
}

func (r *Router) start(t testing.TB, daemon string, args ...string) {
	t.Helper()
	cmd := r.NS.Command(filepath.Join(Dir, daemon), args...)
	out, err := os.Create(filepath.Join(r.Dir, daemon+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	testkit.Require(t, "start FRR "+daemon, cmd.Start())
	r.procs = append(r.procs, cmd)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
}

// Vtysh runs one show command through vtysh against this router's daemons.
func (r *Router) Vtysh(t testing.TB, command string) string {
	t.Helper()
	out, err := exec.Command("vtysh", "--vty_socket", r.Dir, "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("vtysh %q: %v\n%s", command, err, out)
	}
	return string(out)
}

// WaitFull waits until ospfd has n neighbours in state Full.
func (r *Router) WaitFull(t testing.TB, n int) {
	t.Helper()
	waitLong(t, fmt.Sprintf("%d Full OSPF neighbours in %s", n, r.NS.Name), func() error {
		out, err := exec.Command("vtysh", "--vty_socket", r.Dir, "-c", "show ip ospf neighbor").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if got := strings.Count(string(out), "Full/"); got < n {
			return fmt.Errorf("%d Full:\n%s", got, out)
		}
		return nil
	})
}

// Patience is how long the kit waits for an OSPF event (daemon start,
// adjacency, flooding): OSPF's own timers are seconds long.
const Patience = 60 * time.Second

// waitLong polls cond like testkit.WaitFor, with the kit's Patience.
func waitLong(t testing.TB, what string, cond func() error) {
	t.Helper()
	WaitFor(t, what, cond)
}

// WaitFor polls cond every 50 ms until it returns nil and fails t after
// Patience, naming what it waited for and the last state it saw.
func WaitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %v", Patience, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
