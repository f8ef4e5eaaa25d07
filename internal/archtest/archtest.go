// Package archtest checks rloc's package map (docs/design.md) against the
// real import graph: its test loads the graph with `go list -deps -json` and
// fails on every import the map forbids. The checks are plain functions
// over a Graph, so their own tests run them on small made-up graphs and show
// that each one catches what it is meant to catch.
//
// Only non-test imports count: a _test.go file may import what it needs.
package archtest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Package is one node of the import graph.
type Package struct {
	// Path is the full import path.
	Path string
	// Main marks a command (package main).
	Main bool
	// Imports are the direct imports of the package's non-test files.
	Imports []string
}

// Graph is an import graph: rloc's packages and everything they import,
// standard library included.
type Graph struct {
	// Module is the module path ("github.com/rloc-router/rloc").
	Module string
	// Packages holds every package by import path.
	Packages map[string]*Package
}

// NewGraph builds a Graph of module from pkgs.
func NewGraph(module string, pkgs []Package) *Graph {
	g := &Graph{Module: module, Packages: make(map[string]*Package, len(pkgs))}
	for i := range pkgs {
		g.Packages[pkgs[i].Path] = &pkgs[i]
	}
	return g
}

// Rel returns path relative to the module ("fastpath/nexthop") and whether
// path is in the module at all.
func (g *Graph) Rel(path string) (string, bool) {
	if path == g.Module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, g.Module+"/")
	return rel, ok
}

// Own returns the module's packages, relative path → package, in path order.
func (g *Graph) Own() []string {
	var own []string
	for p := range g.Packages {
		if _, ok := g.Rel(p); ok {
			own = append(own, p)
		}
	}
	sort.Strings(own)
	return own
}

// Deps returns every package path reaches through non-test imports (path
// itself excluded), sorted.
func (g *Graph) Deps(path string) []string {
	seen := map[string]bool{path: true}
	stack := []string{path}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pkg := g.Packages[p]
		if pkg == nil {
			continue
		}
		for _, imp := range pkg.Imports {
			if !seen[imp] {
				seen[imp] = true
				stack = append(stack, imp)
			}
		}
	}
	delete(seen, path)
	deps := make([]string, 0, len(seen))
	for p := range seen {
		deps = append(deps, p)
	}
	sort.Strings(deps)
	return deps
}

// Violation is one import the map forbids.
type Violation struct {
	// Pkg is the importing package (relative to the module).
	Pkg string
	// Import is the forbidden import path (relative when in the module).
	Import string
	// Rule says which rule forbids it.
	Rule string
}

// String formats v for a test failure.
func (v Violation) String() string {
	return fmt.Sprintf("%s imports %s: %s", v.Pkg, v.Import, v.Rule)
}

// under reports whether rel is prefix or a package below it.
func under(rel, prefix string) bool {
	return rel == prefix || strings.HasPrefix(rel, prefix+"/")
}

func underAny(rel string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return under(rel, p) })
}

// KitRoot is the folder of the test kits, the only non-test code that may
// import the testing package.
const KitRoot = "internal/testkit"

// isTesting reports whether path is the testing package or one below it.
func isTesting(path string) bool { return under(path, "testing") }

// CheckTesting finds non-test code outside KitRoot that imports testing
// (directly, or through a kit), and commands that link testing through any
// dependency, third-party ones included.
func CheckTesting(g *Graph) []Violation {
	var vs []Violation
	for _, p := range g.Own() {
		rel, _ := g.Rel(p)
		if under(rel, KitRoot) {
			continue
		}
		pkg := g.Packages[p]
		for _, imp := range pkg.Imports {
			irel, own := g.Rel(imp)
			switch {
			case isTesting(imp):
				vs = append(vs, Violation{rel, imp, "only _test.go files and " + KitRoot + " import testing"})
			case own && under(irel, KitRoot):
				vs = append(vs, Violation{rel, irel, "only _test.go files import the test kits"})
			}
		}
		if pkg.Main {
			for _, d := range g.Deps(p) {
				if isTesting(d) {
					vs = append(vs, Violation{rel, d, "a command links the testing framework (through its dependencies)"})
				}
			}
		}
	}
	return vs
}

// SlowpathRoot is the folder whose direct sub-folders are the control
// plane's roles.
const SlowpathRoot = "slowpath"

// roleOf returns the role a module package belongs to: X for slowpath/X and
// anything below it, unless X is in nonRoles; "" for other packages.
func roleOf(rel string, nonRoles []string) string {
	rest, ok := strings.CutPrefix(rel, SlowpathRoot+"/")
	if !ok {
		return ""
	}
	role, _, _ := strings.Cut(rest, "/")
	if slices.Contains(nonRoles, role) {
		return ""
	}
	return role
}

// CheckRoles finds role packages that reach another role's packages through
// their non-test imports, directly or not. Every package directly under
// slowpath/ is a role (with its sub-packages) unless its name is in
// nonRoles (shared primitives such as the registration store).
func CheckRoles(g *Graph, nonRoles []string) []Violation {
	var vs []Violation
	for _, p := range g.Own() {
		rel, _ := g.Rel(p)
		role := roleOf(rel, nonRoles)
		core := rel == SlowpathRoot
		if role == "" && !core {
			continue
		}
		for _, d := range g.Deps(p) {
			drel, own := g.Rel(d)
			if !own {
				continue
			}
			other := roleOf(drel, nonRoles)
			switch {
			case other == "" || other == role:
			case core:
				vs = append(vs, Violation{rel, drel, fmt.Sprintf("the core reaches role %s; the core knows no role", other)})
			default:
				vs = append(vs, Violation{rel, drel, fmt.Sprintf("role %s reaches role %s; roles meet through interfaces the core declares", role, other)})
			}
		}
	}
	return vs
}

// Rule is one row of the package map's "may import" column, as far as it is
// cheap to check.
type Rule struct {
	// Pkg is the folder (relative to the module) the rule covers, with every
	// package below it.
	Pkg string
	// StdOnly: the packages import the standard library only.
	StdOnly bool
	// Module lists the folders of the module the packages may import (each
	// with everything below it); nil allows any, an empty non-nil list none.
	Module []string
}

// Restriction keeps a third-party import to some folders of the module.
type Restriction struct {
	// Import is the import path (with everything below it).
	Import string
	// Allowed lists the folders whose non-test code may import it.
	Allowed []string
	// Why is the house rule.
	Why string
}

// CheckMap finds non-test imports that break a Rule or a Restriction. The
// standard library is recognised by the absence of a dot in the first path
// element.
func CheckMap(g *Graph, rules []Rule, restrictions []Restriction) []Violation {
	var vs []Violation
	for _, p := range g.Own() {
		rel, _ := g.Rel(p)
		for _, imp := range g.Packages[p].Imports {
			irel, own := g.Rel(imp)
			for _, r := range rules {
				if !under(rel, r.Pkg) {
					continue
				}
				switch {
				case r.StdOnly && !isStd(imp):
					vs = append(vs, Violation{rel, imp, r.Pkg + " imports the standard library only"})
				case own && r.Module != nil && !under(irel, r.Pkg) && !underAny(irel, r.Module):
					vs = append(vs, Violation{rel, irel, fmt.Sprintf("%s may import only %s from the module", r.Pkg, strings.Join(r.Module, ", "))})
				}
			}
			for _, x := range restrictions {
				if under(imp, x.Import) && !underAny(rel, x.Allowed) {
					vs = append(vs, Violation{rel, imp, x.Why})
				}
			}
		}
	}
	return vs
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// NonRoles are the packages directly under slowpath/ that are shared
// primitives or the core's parts, not roles.
func NonRoles() []string {
	return []string{"regstore", "request", "control", "bgp"}
}

// MapRules are the "may import" rules of docs/design.md's package map that
// are checked.
func MapRules() []Rule {
	return []Rule{
		{Pkg: "wire", StdOnly: true},
		{Pkg: "cache", Module: []string{"wire"}},
		{Pkg: "ring", Module: []string{}},
		{Pkg: "replicate", Module: []string{"wire", "cache"}},
		{Pkg: "fastpath/nexthop", Module: []string{}},
		{Pkg: "fastpath", Module: []string{"wire", "cache", "ring", "replicate", "fastpath/nexthop"}},
		{Pkg: "slowpath", Module: []string{"wire", "cache", "ring", "replicate", "fastpath"}},
		{Pkg: "router", Module: []string{"wire", "cache", "ring", "replicate", "fastpath", "slowpath", "internal/render", "internal/buildinfo"}},
		{Pkg: "internal/render", StdOnly: true},
		{Pkg: "lab", Module: []string{}},
	}
}

// Restrictions are the house rules on third-party imports.
func Restrictions() []Restriction {
	return []Restriction{
		{Import: "github.com/google/gopacket", Allowed: []string{KitRoot, "bench"},
			Why: "gopacket is for tests, pcap output and traffic generation, never production code"},
		{Import: "github.com/spf13/viper", Allowed: []string{"cmd"},
			Why: "viper stays in cmd/; packages take plain Go config structs"},
	}
}
