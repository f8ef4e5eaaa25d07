// Package bgpdtest runs FRR's bgpd in a namespace a test created, as the
// independent BGP implementation at the other end of rloc's sessions
// (slowpath/bgp, slowpath/discovery).
package bgpdtest

import (
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/lab/netns"
)

// Path is where Debian's frr package installs bgpd (not on PATH).
const Path = "/usr/lib/frr/bgpd"

// Require fails the test under CI, and skips it otherwise, when bgpd is
// not installed.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		testkit.Unavailable(t, "FRR's bgpd (scripts/deps.sh bgpd installs frr): %v", err)
	}
}

// Bgpd is a bgpd the test started.
type Bgpd struct {
	// VTY is its vty socket directory, for vtysh --vty_socket.
	VTY string
}

// Start runs bgpd in ns with the configuration conf: without zebra and
// without kernel routes (-Z -S), with its own pid, vty and zserv paths in a
// temporary directory, listening on listen only when it is valid. It is
// killed when the test ends; its log is shown when the test failed.
func Start(t testing.TB, ns *netns.NS, conf string, listen netip.Addr) *Bgpd {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	vty := filepath.Join(dir, "vty")
	if err := os.Mkdir(vty, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-Z", "-S", "-f", file, "-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", vty,
		"-z", filepath.Join(dir, "zserv.api"), "-P", "0", "--log", "stdout"}
	if listen.IsValid() {
		args = append(args, "-l", listen.String())
	}
	log := &lockedLog{}
	c := ns.Command(Path, args...)
	c.Stdout, c.Stderr = log, log
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
		if t.Failed() {
			t.Logf("bgpd's log:\n%s", log.String())
		}
	})
	return &Bgpd{VTY: vty}
}

// Vtysh runs one show command through vtysh against this bgpd.
func (b *Bgpd) Vtysh(t testing.TB, command string) string {
	t.Helper()
	out, err := exec.Command(testkit.Tool(t, "vtysh"), "--vty_socket", b.VTY, "-d", "bgpd", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("vtysh %q: %v\n%s", command, err, out)
	}
	return string(out)
}

// lockedLog collects bgpd's stdout and stderr, which write concurrently.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

var _ io.Writer = (*lockedLog)(nil)

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
