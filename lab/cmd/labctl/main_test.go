package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab"
)

// TestMain lets up re-execute this test binary as `labctl delayd`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "delayd" {
		main()
		return
	}
	os.Exit(m.Run())
}

const topo = `
nodes: [{name: a}, {name: b}]
links:
  - ends:
      - {node: a, ifname: eth0, addrs: [10.0.0.1/24]}
      - {node: b, ifname: eth0, addrs: [10.0.0.2/24]}
`

func TestUpExecDown(t *testing.T) {
	netnstest.Require(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run([]string{"check", file}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"up", file}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	id := strings.TrimSpace(out.String())
	t.Cleanup(func() { lab.DownState(lab.StatePath(id)) })
	out.Reset()
	if err := run([]string{"ns", id, "b"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), lab.NamePrefix+id+"-b"; got != want {
		t.Errorf("ns: %q, want %q", got, want)
	}
	out.Reset()
	if err := run([]string{"exec", id, "a", "ip", "-4", "-o", "addr", "show", "dev", "eth0"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if !strings.Contains(out.String(), "10.0.0.1/24") {
		t.Errorf("exec output %q", out.String())
	}
	out.Reset()
	if err := run([]string{"ls"}, &out, &errb); err != nil || !strings.Contains(out.String(), id) {
		t.Errorf("ls: %q, %v", out.String(), err)
	}
	if err := run([]string{"ns", id, "zz"}, &out, &errb); err == nil {
		t.Error("ns of an unknown node succeeded")
	}
	// A detached run is not stale although its builder (this process) is
	// alive or gone: clean without -all keeps it.
	if _, err := lab.Clean(false); err != nil {
		t.Fatal(err)
	}
	if left, _ := lab.Namespaces(lab.NamePrefix + id + "-"); len(left) != 2 {
		t.Fatalf("clean removed a detached run: %v left", left)
	}
	out.Reset()
	if err := run([]string{"down", file}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "down "+id) {
		t.Errorf("down output %q", out.String())
	}
	if left, _ := lab.Namespaces(lab.NamePrefix + id + "-"); len(left) != 0 {
		t.Errorf("namespaces left after down: %v", left)
	}
	if err := run([]string{"down", id}, &out, &errb); err == nil {
		t.Error("down of a run already down succeeded")
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{nil, {"bogus"}, {"up"}, {"down"}, {"ns", "x"}, {"exec", "x", "y"}, {"check"}} {
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("labctl %v succeeded", args)
		}
	}
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("nodes: [{name: a, x: 1}]\n"), 0o644)
	if err := run([]string{"check", f}, &out, &errb); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("check of a bad file: %v", err)
	}
}

// TestUpDelayed brings up a topology with a 15 ms link: up returns with
// the forwarder daemon running (the run outlives up), ping's shortest
// round trip is at least 30 ms, and down removes the run.
func TestUpDelayed(t *testing.T) {
	netnstest.Require(t)
	ping := testkit.Tool(t, "ping")
	file := filepath.Join(t.TempDir(), "d.yaml")
	if err := os.WriteFile(file, []byte(topo+"    delay: 15ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run([]string{"up", file}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	id := strings.TrimSpace(out.String())
	t.Cleanup(func() { lab.DownState(lab.StatePath(id)) })
	out.Reset()
	if err := run([]string{"exec", id, "a", ping, "-n", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"}, &out, &errb); err != nil {
		t.Fatal(err, out.String(), errb.String())
	}
	m := regexp.MustCompile(`= ([0-9.]+)/`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("ping output without a summary: %s", out.String())
	}
	if min, _ := strconv.ParseFloat(m[1], 64); min < 30 {
		t.Errorf("shortest round trip %v ms over a 15 ms link", min)
	}
	out.Reset()
	if err := run([]string{"down", id}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if left, _ := lab.Namespaces(lab.NamePrefix + id + "-"); len(left) != 0 {
		t.Errorf("namespaces left after down: %v", left)
	}
}
