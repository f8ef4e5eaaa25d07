package replicate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	tITR = u("192.0.2.1")
	tSrc = netip.MustParsePrefix("10.1.1.1/32")
	tGrp = netip.MustParsePrefix("232.1.1.1/32")
)

func etr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }
func rtr(l, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{203, 0, byte(113 + l), byte(i)})
}

// joinAll joins each node to the parent ParentFor chooses and checks the
// tree after every join.
func joinAll(t *testing.T, tr *Tree, level int, nodes ...netip.Addr) {
	t.Helper()
	for _, n := range nodes {
		p := tr.ParentFor(n, level)
		if err := tr.Join(n, p); err != nil {
			t.Fatalf("join %s -> %s: %v", n, p, err)
		}
		if err := tr.Check(); err != nil {
			t.Fatal(err)
		}
	}
}

// twoRTRs is the tree: 2 level-0 RTRs, 6 receivers' ETRs.
func twoRTRs(t *testing.T) *Tree {
	tr := NewTree(tSrc, tGrp, tITR)
	gone, err := tr.SetRTRs([]Entry{{rtr(0, 1), 0}, {rtr(0, 2), 0}, {etr(99), 128}})
	if err != nil || len(gone) != 0 {
		t.Fatal(gone, err)
	}
	joinAll(t, tr, 0, rtr(0, 1), rtr(0, 2))
	for i := 1; i <= 6; i++ {
		joinAll(t, tr, ETRLevel, etr(i))
	}
	return tr
}

func TestTreeParentChoice(t *testing.T) {
	tr := twoRTRs(t)
	if got := tr.Children(tITR); !slices.Equal(got, []netip.Addr{rtr(0, 1), rtr(0, 2)}) {
		t.Errorf("ITR children %v", got)
	}
	a, b := len(tr.Children(rtr(0, 1))), len(tr.Children(rtr(0, 2)))
	if a != 3 || b != 3 {
		t.Errorf("ETRs spread %d/%d, want 3/3", a, b)
	}
	// The ITR's plan: exactly the two level-0 RTRs.
	p, err := NewPlanFromEntries(tr.Entries(tITR), PlanConfig{Role: RoleITR, Self: []netip.Addr{tITR}, Template: testTemplates()})
	if err != nil || p.Len() != 2 {
		t.Fatalf("ITR plan %v %v", p, err)
	}
	// An RTR's plan: its three ETRs.
	p, err = NewPlanFromEntries(tr.Entries(rtr(0, 1)), PlanConfig{Role: RoleRTR, Level: 0, Self: []netip.Addr{rtr(0, 1)}, Template: testTemplates()})
	if err != nil || p.Len() != 3 || p.TargetLevel() != ETRLevel {
		t.Fatalf("RTR plan %v %v", p, err)
	}
	// The same joins in the same order give the same tree everywhere.
	if tr.String() != twoRTRs(t).String() {
		t.Errorf("parent choice not deterministic")
	}
}

func TestTreeLevels(t *testing.T) {
	tr := NewTree(netip.Prefix{}, tGrp, tITR)
	for i := 1; i <= 2; i++ {
		if err := tr.AddRTR(rtr(0, i), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 4; i++ {
		if err := tr.AddRTR(rtr(1, i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if p := tr.ParentFor(rtr(0, 1), 0); p != tITR {
		t.Errorf("level 0 parent %s, want the ITR", p)
	}
	joinAll(t, tr, 0, rtr(0, 1), rtr(0, 2))
	joinAll(t, tr, 1, rtr(1, 1), rtr(1, 2), rtr(1, 3), rtr(1, 4))
	for i := 1; i <= 4; i++ {
		if ps := tr.Parents(rtr(1, i)); len(ps) != 1 || tr.nodes[ps[0]].level != 0 {
			t.Errorf("level-1 RTR %s parents %v", rtr(1, i), ps)
		}
	}
	// ETRs go to the leaf level (1), 2 per leaf RTR.
	for i := 1; i <= 8; i++ {
		joinAll(t, tr, ETRLevel, etr(i))
		if p := tr.Parents(etr(i))[0]; tr.nodes[p].level != 1 {
			t.Errorf("ETR %s joined %s at level %d", etr(i), p, tr.nodes[p].level)
		}
	}
	for i := 1; i <= 4; i++ {
		if n := len(tr.Children(rtr(1, i))); n != 2 {
			t.Errorf("leaf RTR %s has %d ETRs", rtr(1, i), n)
		}
	}
	// No RTR at all: ETRs join the ITR (head-end).
	he := NewTree(tSrc, tGrp, tITR)
	if p := he.ParentFor(etr(1), ETRLevel); p != tITR {
		t.Errorf("no RTRs: parent %s", p)
	}
	// A level-3 RTR with no level 2: the nearest lower level.
	if p := tr.ParentFor(rtr(3, 1), 3); tr.nodes[p].level != 1 {
		t.Errorf("level-3 parent %s", p)
	}
}

func TestTreeFailReparents(t *testing.T) {
	tr := twoRTRs(t)
	dead := rtr(0, 1)
	orphans := tr.Children(dead)
	steps, err := tr.Fail(dead)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range orphans {
		want = append(want, fmt.Sprintf("join %s -> %s", o, rtr(0, 2)))
	}
	want = append(want, fmt.Sprintf("remove %s -> %s", dead, tITR))
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("steps\n%v\nwant\n%v", got, want)
	}
	if n := len(tr.Children(rtr(0, 2))); n != 6 {
		t.Errorf("survivor has %d children", n)
	}
	if tr.Children(tITR)[0] != rtr(0, 2) || len(tr.Children(tITR)) != 1 {
		t.Errorf("ITR children %v", tr.Children(tITR))
	}
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
	// The last RTR of the level fails: its ETRs fall back to the ITR.
	if _, err := tr.Fail(rtr(0, 2)); err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Children(tITR)); n != 6 {
		t.Errorf("ITR has %d children after both RTRs failed", n)
	}
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fail(rtr(0, 2)); !errors.Is(err, ErrTreeUnknown) {
		t.Errorf("second failure: %v", err)
	}
}

func TestTreeFailMidLevel(t *testing.T) {
	// A level-0 RTR with level-1 children fails: they rejoin the other
	// level-0 RTR, keeping their own ETRs.
	tr := NewTree(tSrc, tGrp, tITR)
	for i := 1; i <= 2; i++ {
		_ = tr.AddRTR(rtr(0, i), 0)
		_ = tr.AddRTR(rtr(1, i), 1)
	}
	joinAll(t, tr, 0, rtr(0, 1), rtr(0, 2))
	joinAll(t, tr, 1, rtr(1, 1), rtr(1, 2))
	joinAll(t, tr, ETRLevel, etr(1), etr(2), etr(3), etr(4))
	dead := tr.Parents(rtr(1, 1))[0]
	other := rtr(0, 1)
	if dead == other {
		other = rtr(0, 2)
	}
	if _, err := tr.Fail(dead); err != nil {
		t.Fatal(err)
	}
	if p := tr.Parents(rtr(1, 1)); len(p) != 1 || p[0] != other {
		t.Errorf("level-1 RTR parents %v, want %s", p, other)
	}
	if n := len(tr.Children(rtr(1, 1))); n != 2 {
		t.Errorf("level-1 RTR lost its ETRs: %d", n)
	}
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestTreeDepartMakeBeforeBreak(t *testing.T) {
	tr := twoRTRs(t)
	gone := rtr(0, 2)
	kids := tr.Children(gone)
	steps, err := tr.Depart(gone)
	if err != nil {
		t.Fatal(err)
	}
	// Every child joins the new parent before anyone leaves the old one,
	// and the RTR leaves its own parent last.
	var want []string
	for _, k := range kids {
		want = append(want, fmt.Sprintf("join %s -> %s", k, rtr(0, 1)))
	}
	for _, k := range kids {
		want = append(want, fmt.Sprintf("leave %s -> %s", k, gone))
	}
	want = append(want, fmt.Sprintf("remove %s -> %s", gone, tITR))
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("steps\n%v\nwant\n%v", got, want)
	}
	// Replaying the steps, each child always has at least one parent.
	tr2 := twoRTRs(t)
	for _, s := range steps {
		switch s.Op {
		case StepJoin:
			if err := tr2.Join(s.Child, s.Parent); err != nil {
				t.Fatal(err)
			}
		case StepLeave:
			if err := tr2.Leave(s.Child, s.Parent); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i <= 6; i++ {
			if len(tr2.Parents(etr(i))) == 0 {
				t.Fatalf("after %s: %s has no parent", s, etr(i))
			}
		}
	}
	if n := len(tr.Children(rtr(0, 1))); n != 6 {
		t.Errorf("new parent has %d children", n)
	}
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
	// A leaving RTR is never chosen.
	tr3 := twoRTRs(t)
	tr3.nodes[rtr(0, 1)].leaving = true
	for i := range 10 {
		if p := tr3.ParentFor(etr(50+i), ETRLevel); p != rtr(0, 2) {
			t.Fatalf("picked %s", p)
		}
	}
	if err := tr3.Join(etr(60), rtr(0, 1)); !errors.Is(err, ErrTreeDown) {
		t.Errorf("join to a leaving RTR: %v", err)
	}
}

func TestTreeLoops(t *testing.T) {
	tr := twoRTRs(t)
	_ = tr.AddRTR(rtr(1, 1), 1)
	if err := tr.Join(rtr(1, 1), rtr(0, 1)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		child, parent netip.Addr
		want          error
	}{
		{"own child", rtr(0, 1), rtr(0, 1), ErrTreeLoop},
		{"same level", rtr(0, 2), rtr(0, 1), ErrTreeLoop},
		{"upwards", rtr(0, 1), rtr(1, 1), ErrTreeLoop},
		{"under an ETR", etr(7), etr(1), ErrTreeLoop},
		{"ITR joins", tITR, rtr(0, 1), ErrTreeLoop},
		{"unknown parent", etr(7), u("203.0.200.1"), ErrTreeUnknown},
	}
	for _, c := range cases {
		if err := tr.Join(c.child, c.parent); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
	// A cycle planted by hand is found by Check.
	a, b := tr.nodes[rtr(0, 1)], tr.nodes[rtr(1, 1)]
	a.parents = append(a.parents, b.addr)
	b.children = append(b.children, a.addr)
	if err := tr.Check(); !errors.Is(err, ErrTreeLoop) {
		t.Errorf("planted cycle: %v", err)
	}
	// The RTR registering as its own child in an RLE is refused by NewPlan.
	_, err := NewPlanFromEntries([]Entry{{rtr(0, 1), 0}, {rtr(0, 1), 1}}, PlanConfig{Role: RoleRTR, Level: 0, Self: []netip.Addr{rtr(0, 1)}, Template: testTemplates()})
	if !errors.Is(err, ErrRLEDuplicate) {
		t.Errorf("RLE with the RTR as its own child: %v", err)
	}
	if err := tr.AddRTR(tITR, 0); !errors.Is(err, ErrTreeLoop) {
		t.Errorf("ITR as an RTR: %v", err)
	}
	if err := tr.AddRTR(rtr(0, 1), 3); err == nil {
		t.Errorf("moving a joined RTR to another level")
	}
	if err := tr.AddRTR(rtr(0, 9), 128); err == nil {
		t.Errorf("RTR at the ETR level")
	}
}

func TestTreeLeaveAndSetRTRs(t *testing.T) {
	tr := twoRTRs(t)
	p := tr.Parents(etr(1))[0]
	if err := tr.Leave(etr(1), p); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.nodes[etr(1)]; ok {
		t.Errorf("ETR without parents kept")
	}
	if err := tr.Leave(etr(1), p); !errors.Is(err, ErrTreeUnknown) {
		t.Errorf("second leave: %v", err)
	}
	gone, err := tr.SetRTRs([]Entry{{rtr(0, 1), 0}, {rtr(0, 3), 0}})
	if err != nil || !slices.Equal(gone, []netip.Addr{rtr(0, 2)}) {
		t.Errorf("SetRTRs gone %v %v", gone, err)
	}
	if _, err := tr.Depart(etr(2)); !errors.Is(err, ErrTreeUnknown) {
		t.Errorf("Depart of an ETR: %v", err)
	}
}

func TestTreeString(t *testing.T) {
	tr := twoRTRs(t)
	_ = tr.AddRTR(rtr(5, 1), 5)
	s := tr.String()
	r1, r2 := tr.Children(rtr(0, 1)), tr.Children(rtr(0, 2))
	var want strings.Builder
	want.WriteString("replication tree (10.1.1.1/32, 232.1.1.1/32), ITR 192.0.2.1\n")
	want.WriteString("levels: 0=2 5=1 etr=6\n")
	want.WriteString("itr 192.0.2.1 children=2\n")
	want.WriteString("  rtr 203.0.113.1 level 0 children=3\n")
	for _, e := range r1 {
		want.WriteString("    etr " + e.String() + "\n")
	}
	want.WriteString("  rtr 203.0.113.2 level 0 children=3\n")
	for _, e := range r2 {
		want.WriteString("    etr " + e.String() + "\n")
	}
	want.WriteString("unjoined: rtr 203.0.118.1 level 5 children=0\n")
	if s != want.String() {
		t.Errorf("String:\n%s\nwant:\n%s", s, want.String())
	}
	if !strings.Contains(NewTree(netip.Prefix{}, tGrp, tITR).String(), "(*, 232.1.1.1/32)") {
		t.Errorf("(*,G) header")
	}
}

func stepStrings(ss []Step) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.String())
	}
	return out
}

// TestTreeGraph: Graph lists every node with its level and state, sorted
// by level, and one edge per join, the same joins Children reports; a
// failed RTR is gone from it and its children moved.
func TestTreeGraph(t *testing.T) {
	tr := twoRTRs(t)
	if err := tr.AddRTR(rtr(1, 9), 1); err != nil { // unjoined: a node without edges
		t.Fatal(err)
	}
	g := tr.Graph()
	if len(g.Nodes) != 10 || g.Nodes[0] != (TreeNode{Addr: tITR, Level: -1}) {
		t.Fatalf("nodes %+v", g.Nodes)
	}
	if !slices.IsSortedFunc(g.Nodes, func(a, b TreeNode) int { return a.Level - b.Level }) {
		t.Errorf("nodes not sorted by level: %+v", g.Nodes)
	}
	var want []TreeEdge
	for _, n := range g.Nodes {
		for _, c := range tr.Children(n.Addr) {
			want = append(want, TreeEdge{Parent: n.Addr, Child: c})
		}
	}
	if len(g.Edges) != 8 || !slices.Equal(g.Edges, want) {
		t.Errorf("edges %+v, want the 8 joins %+v", g.Edges, want)
	}
	if _, err := tr.Fail(rtr(0, 1)); err != nil {
		t.Fatal(err)
	}
	g = tr.Graph()
	if slices.ContainsFunc(g.Nodes, func(n TreeNode) bool { return n.Addr == rtr(0, 1) }) ||
		slices.ContainsFunc(g.Edges, func(e TreeEdge) bool { return e.Parent == rtr(0, 1) || e.Child == rtr(0, 1) }) {
		t.Errorf("a failed RTR is still drawn: %+v", g)
	}
	if len(g.Nodes) != 9 || len(g.Edges) != 7 || len(tr.Children(rtr(0, 2))) != 6 {
		t.Errorf("after the failure: %d nodes, %d edges, %d children of the other RTR", len(g.Nodes), len(g.Edges), len(tr.Children(rtr(0, 2))))
	}
}
