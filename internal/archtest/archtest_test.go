package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
)

// load lists the module's packages and all their dependencies with
// `go list -deps -json`, from the module's root.
func load(t *testing.T) *Graph {
	t.Helper()
	goTool, err := exec.LookPath("go")
	testkit.Require(t, "the go tool (to list the import graph)", err)
	var mod struct{ Path, Dir string }
	out, err := exec.Command(goTool, "list", "-m", "-json").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-e", "-json=ImportPath,Name,Imports,Error", "./...")
	cmd.Dir = mod.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if out, err = cmd.Output(); err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Name string
			Imports          []string
			Error            *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -deps output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, Package{Path: p.ImportPath, Main: p.Name == "main", Imports: p.Imports})
	}
	g := NewGraph(mod.Path, pkgs)
	if len(g.Own()) < 10 {
		t.Fatalf("go list found only %d packages of %s", len(g.Own()), mod.Path)
	}
	return g
}

func report(t *testing.T, vs []Violation) {
	t.Helper()
	for _, v := range vs {
		t.Error(v)
	}
}

// TestArchitecture checks the real import graph:
//   - no non-test package outside internal/testkit imports testing or a
//     kit, and no command links testing;
//   - no role package under slowpath/ reaches another role's packages;
//   - the "may import" column of docs/design.md's package map and the house
//     rules on gopacket and viper hold.
func TestArchitecture(t *testing.T) {
	g := load(t)
	t.Run("NoTestingInProduction", func(t *testing.T) { report(t, CheckTesting(g)) })
	t.Run("RolesDoNotImportEachOther", func(t *testing.T) { report(t, CheckRoles(g, NonRoles())) })
	t.Run("PackageMap", func(t *testing.T) { report(t, CheckMap(g, MapRules(), Restrictions())) })
}

const mod = "example.com/m"

// fake builds a graph from lines "pkg: import import ..." (module-relative
// paths for the module's packages, "main" before the colon's package name
// marks a command: "main cmd/x: ...").
func fake(lines ...string) *Graph {
	var pkgs []Package
	for _, l := range lines {
		head, imps, _ := strings.Cut(l, ":")
		main := false
		if h, ok := strings.CutPrefix(head, "main "); ok {
			head, main = h, true
		}
		p := Package{Path: full(strings.TrimSpace(head)), Main: main}
		for _, imp := range strings.Fields(imps) {
			p.Imports = append(p.Imports, full(imp))
		}
		pkgs = append(pkgs, p)
	}
	return NewGraph(mod, pkgs)
}

// full makes a module path of the fake module's folders; paths that look
// like the standard library or another module stay as they are.
func full(p string) string {
	first, _, _ := strings.Cut(p, "/")
	if strings.Contains(first, ".") || slices.Contains([]string{"testing", "fmt", "os", "net"}, first) {
		return p
	}
	return mod + "/" + p
}

func strs(vs []Violation) []string {
	var s []string
	for _, v := range vs {
		s = append(s, v.Pkg+" -> "+v.Import)
	}
	return s
}

func expect(t *testing.T, name string, got []Violation, want ...string) {
	t.Helper()
	if g := strs(got); !slices.Equal(g, want) {
		t.Errorf("%s: violations %q, want %q", name, g, want)
	}
}

// TestCheckTestingCatches: the check fails on a production package that
// imports testing or a kit, and on a command that links testing through a
// third-party package; kits and clean packages pass.
func TestCheckTestingCatches(t *testing.T) {
	clean := []string{
		"internal/testkit: fmt testing",
		"internal/testkit/netnstest: internal/testkit lab/netns testing",
		"lab/netns: os",
		"main lab/cmd/labctl: lab/netns fmt",
		"fmt:", "os:", "testing: fmt",
	}
	expect(t, "clean", CheckTesting(fake(clean...)))
	expect(t, "lab/netns imports testing",
		CheckTesting(fake(append(clean[:2:2], "lab/netns: os testing", "main lab/cmd/labctl: lab/netns", "os:", "testing:")...)),
		"lab/cmd/labctl -> testing", "lab/netns -> testing")
	expect(t, "production imports a kit",
		CheckTesting(fake(append(clean[:2:2], "lab/netns: os", "router: internal/testkit", "os:", "testing:")...)),
		"router -> internal/testkit")
	expect(t, "a command links testing through a dependency",
		CheckTesting(fake("main cmd/x: example.org/lib", "example.org/lib: testing/quick", "testing/quick: testing", "testing:")),
		"cmd/x -> testing", "cmd/x -> testing/quick")
}

// TestCheckRolesCatches: every package directly under slowpath/ is a role
// unless allowlisted; a role reaching another (directly, through a shared
// package, or through a role's sub-package) fails; roles using the core and
// shared primitives pass; the core reaching a role fails.
func TestCheckRolesCatches(t *testing.T) {
	nonRoles := []string{"regstore", "request"}
	clean := []string{
		"slowpath: wire",
		"slowpath/regstore: slowpath wire",
		"slowpath/request: slowpath",
		"slowpath/mapserver: slowpath slowpath/regstore",
		"slowpath/xtr: slowpath slowpath/request",
		"slowpath/xtr/probe: slowpath/xtr",
		"wire:",
	}
	expect(t, "clean", CheckRoles(fake(clean...), nonRoles))
	expect(t, "direct", CheckRoles(fake(append(slices.Clone(clean), "slowpath/ddt: slowpath/mapserver")...), nonRoles),
		"slowpath/ddt -> slowpath/mapserver")
	expect(t, "through a shared package and into a sub-package",
		CheckRoles(fake("slowpath/request: slowpath/xtr/probe", "slowpath/xtr/probe:", "slowpath/mcast: slowpath/request"), nonRoles),
		"slowpath/mcast -> slowpath/xtr/probe")
	expect(t, "the core reaches a role",
		CheckRoles(fake("slowpath: slowpath/xtr", "slowpath/xtr:"), nonRoles),
		"slowpath -> slowpath/xtr")
	expect(t, "not allowlisted means role",
		CheckRoles(fake("slowpath/regstore: slowpath/mapserver", "slowpath/mapserver:"), nil),
		"slowpath/regstore -> slowpath/mapserver")
}

// TestCheckMapCatches: each kind of rule catches its breach.
func TestCheckMapCatches(t *testing.T) {
	g := fake(
		"wire: fmt github.com/x/y",
		"cache: wire fastpath",
		"ring: fmt",
		"ring/xsk: ring",
		"fastpath: ring/xsk cache fastpath/nexthop",
		"fastpath/nexthop: fastpath",
		"router: github.com/spf13/viper/sub",
		"cmd/rlocd: github.com/spf13/viper",
		"internal/testkit/tsharktest: github.com/google/gopacket/layers",
		"lab: github.com/google/gopacket",
	)
	expect(t, "map", CheckMap(g, MapRules(), Restrictions()),
		"cache -> fastpath",
		"fastpath/nexthop -> fastpath",
		"lab -> github.com/google/gopacket",
		"router -> github.com/spf13/viper/sub",
		"wire -> github.com/x/y",
	)
}
