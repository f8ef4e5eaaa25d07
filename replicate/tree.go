package replicate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Replication-engineering trees (draft-coras-lisp-re). For one (S-EID,G)
// the RTRs register with their levels and the Map-Server merges them into
// one RLE. Receivers' ETRs join a leaf RTR (one of the highest level);
// a level-n RTR joins a level n-1 RTR; a level-0 RTR joins the ITR. The ITR
// then replicates only to the level-0 RTRs that joined it and every RTR to
// its children. Tree is that state as the slow path keeps it: pure logic,
// no I/O; the caller signals the joins and leaves the methods return.

// ETRLevel is the level receivers' ETRs have in a tree (and at which they
// commonly register in an RLE); RTR levels are below it.
const ETRLevel = 128

// Errors of Tree.
var (
	// ErrTreeLoop: a join would make a node its own ancestor, or join a
	// parent that is not at a lower level.
	ErrTreeLoop = errors.New("replicate: join would make a replication loop")
	// ErrTreeUnknown: the node is not in the tree.
	ErrTreeUnknown = errors.New("replicate: node not in the tree")
	// ErrTreeDown: the parent has failed or is leaving.
	ErrTreeDown = errors.New("replicate: parent failed or leaving")
)

// StepOp is what a Step does.
type StepOp uint8

// Step operations.
const (
	// StepJoin: Child joins Parent (Parent adds Child to its replication).
	StepJoin StepOp = iota
	// StepLeave: Child leaves Parent.
	StepLeave
	// StepRemove: Child (an RTR) is gone from the tree; Parent is the
	// parent it left, if any.
	StepRemove
)

// String names the operation.
func (o StepOp) String() string {
	switch o {
	case StepJoin:
		return "join"
	case StepLeave:
		return "leave"
	case StepRemove:
		return "remove"
	}
	return fmt.Sprintf("op-%d", uint8(o))
}

// Step is one change of the tree, in the order the caller must signal it.
type Step struct {
	Op            StepOp
	Child, Parent netip.Addr
}

// String formats the step as "join 198.51.100.1 -> 203.0.113.1".
func (s Step) String() string {
	if !s.Parent.IsValid() {
		return s.Op.String() + " " + s.Child.String()
	}
	return s.Op.String() + " " + s.Child.String() + " -> " + s.Parent.String()
}

// tnode is one node of a Tree.
type tnode struct {
	addr     netip.Addr
	level    int          // -1 ITR, 0..127 RTR, ETRLevel ETR
	parents  []netip.Addr // one, or two during make-before-break
	children []netip.Addr // sorted
	failed   bool
	leaving  bool
}

// Tree is the replication tree of one (S-EID,G). It is not safe for
// concurrent use.
type Tree struct {
	src, group netip.Prefix
	itr        netip.Addr
	nodes      map[netip.Addr]*tnode
}

// NewTree returns the tree of (src, group) rooted at the ITR with RLOC itr
// (found by resolving the S-EID). An invalid src stands for (*,G).
func NewTree(src, group netip.Prefix, itr netip.Addr) *Tree {
	t := &Tree{src: src, group: group, itr: itr.Unmap(), nodes: make(map[netip.Addr]*tnode)}
	t.nodes[t.itr] = &tnode{addr: t.itr, level: -1}
	return t
}

// AddRTR adds an RTR at level (0..ETRLevel-1). Re-adding an RTR at the same
// level revives it after a failure; another level is refused while it has
// children or a parent.
func (t *Tree) AddRTR(addr netip.Addr, level int) error {
	addr = addr.Unmap()
	if level < 0 || level >= ETRLevel || !addr.IsValid() {
		return fmt.Errorf("replicate: RTR %s: level %d not in 0..%d", addr, level, ETRLevel-1)
	}
	if n, ok := t.nodes[addr]; ok {
		if n.level == -1 {
			return fmt.Errorf("%w: %s is the ITR", ErrTreeLoop, addr)
		}
		if n.level != level && (len(n.children) > 0 || len(n.parents) > 0) {
			return fmt.Errorf("replicate: RTR %s is joined at level %d, cannot move to %d", addr, n.level, level)
		}
		n.level, n.failed, n.leaving = level, false, false
		return nil
	}
	t.nodes[addr] = &tnode{addr: addr, level: level}
	return nil
}

// SetRTRs adds the RTRs of a merged RLE (entries below ETRLevel; ETR entries
// are ignored) and returns the RTRs the tree has that the RLE no longer
// lists, for the caller to treat as departures (Depart) or failures (Fail).
func (t *Tree) SetRTRs(es []Entry) (gone []netip.Addr, err error) {
	in := make(map[netip.Addr]bool)
	for _, e := range es {
		if e.Level >= ETRLevel {
			continue
		}
		if err := t.AddRTR(e.Addr, int(e.Level)); err != nil {
			return nil, err
		}
		in[e.Addr.Unmap()] = true
	}
	for _, n := range t.sorted() {
		if n.level >= 0 && n.level < ETRLevel && !in[n.addr] && !n.failed {
			gone = append(gone, n.addr)
		}
	}
	return gone, nil
}

// ParentFor returns the parent a joining node should pick: for an ETR
// (level ETRLevel) a leaf RTR, one of the highest level present; for a
// level-n RTR a level n-1 RTR; for a level-0 RTR, or when no RTR fits, the
// ITR. Among candidates of the chosen level it takes the least loaded (fewest
// children), and among equally loaded ones the one a hash of (candidate,
// child) ranks first, so joins spread evenly and the same way everywhere.
// Failed and leaving RTRs are never chosen.
func (t *Tree) ParentFor(child netip.Addr, level int) netip.Addr {
	pref := level - 1
	if level >= ETRLevel {
		pref = ETRLevel - 1
	}
	return t.pick(child.Unmap(), level, pref, netip.Addr{})
}

// pick chooses among live RTRs below level and at most pref, the highest
// such level, excluding not; the ITR when none.
func (t *Tree) pick(child netip.Addr, level, pref int, not netip.Addr) netip.Addr {
	best := -1
	for _, n := range t.nodes {
		if n.level >= 0 && n.level < level && n.level <= pref && !n.failed && !n.leaving && n.addr != not && n.addr != child {
			best = max(best, n.level)
		}
	}
	if best < 0 {
		return t.itr
	}
	var win *tnode
	var winRank uint64
	for _, n := range t.nodes {
		if n.level != best || n.failed || n.leaving || n.addr == not || n.addr == child {
			continue
		}
		r := rank(n.addr, child)
		if win == nil || len(n.children) < len(win.children) ||
			len(n.children) == len(win.children) && (r > winRank || r == winRank && n.addr.Less(win.addr)) {
			win, winRank = n, r
		}
	}
	return win.addr
}

// rank is a highest-random-weight score of (candidate, child): FNV-1a over
// both addresses, then a final mix.
func rank(cand, child netip.Addr) uint64 {
	h := uint64(14695981039346656037)
	a, b := cand.As16(), child.As16()
	for _, x := range a {
		h = (h ^ uint64(x)) * 1099511628211
	}
	for _, x := range b {
		h = (h ^ uint64(x)) * 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	return h ^ h>>33
}

// Join records that child (an RTR added with AddRTR, or an ETR: any address
// not yet in the tree joins as an ETR) joined parent. It refuses joins that
// would loop: a node joining itself, a parent not at a lower level, or a
// parent that is the child's descendant. A child may have two parents at
// once, during make-before-break.
func (t *Tree) Join(child, parent netip.Addr) error {
	child, parent = child.Unmap(), parent.Unmap()
	if child == parent {
		return fmt.Errorf("%w: %s would be its own child", ErrTreeLoop, child)
	}
	p, ok := t.nodes[parent]
	if !ok {
		return fmt.Errorf("%w: parent %s", ErrTreeUnknown, parent)
	}
	if p.failed || p.leaving {
		return fmt.Errorf("%w: %s", ErrTreeDown, parent)
	}
	c, ok := t.nodes[child]
	if !ok {
		c = &tnode{addr: child, level: ETRLevel}
	}
	if c.level == -1 {
		return fmt.Errorf("%w: the ITR %s cannot join %s", ErrTreeLoop, child, parent)
	}
	if p.level >= c.level || p.level >= ETRLevel {
		return fmt.Errorf("%w: %s (level %d) cannot join %s (level %d)", ErrTreeLoop, child, c.level, parent, p.level)
	}
	if t.descends(parent, child) {
		return fmt.Errorf("%w: %s is below %s", ErrTreeLoop, parent, child)
	}
	t.nodes[child] = c
	if !slices.Contains(c.parents, parent) {
		c.parents = append(c.parents, parent)
		i, _ := slices.BinarySearchFunc(p.children, child, netip.Addr.Compare)
		p.children = slices.Insert(p.children, i, child)
	}
	return nil
}

// descends reports whether a is below b (following parents up from a).
func (t *Tree) descends(a, b netip.Addr) bool {
	seen := map[netip.Addr]bool{}
	var up func(x netip.Addr) bool
	up = func(x netip.Addr) bool {
		if x == b {
			return true
		}
		if seen[x] {
			return false
		}
		seen[x] = true
		n := t.nodes[x]
		if n == nil {
			return false
		}
		for _, p := range n.parents {
			if up(p) {
				return true
			}
		}
		return false
	}
	return up(a)
}

// Leave records that child left parent; an ETR with no parent left is
// forgotten.
func (t *Tree) Leave(child, parent netip.Addr) error {
	child, parent = child.Unmap(), parent.Unmap()
	c, ok := t.nodes[child]
	if !ok || !slices.Contains(c.parents, parent) {
		return fmt.Errorf("%w: %s has not joined %s", ErrTreeUnknown, child, parent)
	}
	t.unlink(c, parent)
	if c.level >= ETRLevel && len(c.parents) == 0 {
		delete(t.nodes, child)
	}
	return nil
}

func (t *Tree) unlink(c *tnode, parent netip.Addr) {
	c.parents = slices.DeleteFunc(c.parents, func(a netip.Addr) bool { return a == parent })
	if p := t.nodes[parent]; p != nil {
		p.children = slices.DeleteFunc(p.children, func(a netip.Addr) bool { return a == c.addr })
	}
}

// Fail handles the failure of an RTR (detected by RLOC-probing or missed
// join refreshes): each of its children re-joins another RTR of the same
// level (or, when none is left, the next one down, down to the ITR), and the
// failed RTR leaves the tree. It applies the changes and returns them in
// order: the joins, then the removal. Packets in flight through the failed
// RTR are lost; that is what Depart avoids.
func (t *Tree) Fail(rtr netip.Addr) ([]Step, error) {
	n, err := t.rtr(rtr)
	if err != nil {
		return nil, err
	}
	n.failed = true
	steps := t.reparent(n, false)
	return append(steps, t.remove(n)...), nil
}

// Depart handles the graceful departure of an RTR, make-before-break: every
// child first joins its new parent (the same choice as Fail), then leaves
// the departing RTR, and only then does the RTR leave its own parent. It
// applies the changes and returns them in that order; signalling them in
// order loses no packet.
func (t *Tree) Depart(rtr netip.Addr) ([]Step, error) {
	n, err := t.rtr(rtr)
	if err != nil {
		return nil, err
	}
	n.leaving = true
	steps := t.reparent(n, true)
	return append(steps, t.remove(n)...), nil
}

func (t *Tree) rtr(a netip.Addr) (*tnode, error) {
	n, ok := t.nodes[a.Unmap()]
	if !ok || n.level < 0 || n.level >= ETRLevel {
		return nil, fmt.Errorf("%w: RTR %s", ErrTreeUnknown, a)
	}
	return n, nil
}

// reparent moves n's children to new parents: joins first; with leaves, a
// leave from n after all the joins.
func (t *Tree) reparent(n *tnode, leaves bool) []Step {
	var steps []Step
	kids := slices.Clone(n.children)
	for _, k := range kids {
		c := t.nodes[k]
		if len(c.parents) > 1 {
			continue // already joined elsewhere (make-before-break in progress)
		}
		np := t.pick(k, c.level, n.level, n.addr)
		if err := t.Join(k, np); err != nil {
			// pick only offers live nodes below the child's level; a
			// refusal here means the tree was inconsistent: leave the
			// child orphaned rather than loop.
			continue
		}
		steps = append(steps, Step{Op: StepJoin, Child: k, Parent: np})
	}
	for _, k := range kids {
		if leaves {
			steps = append(steps, Step{Op: StepLeave, Child: k, Parent: n.addr})
		}
		t.unlink(t.nodes[k], n.addr)
	}
	return steps
}

// remove takes n out of the tree.
func (t *Tree) remove(n *tnode) []Step {
	s := Step{Op: StepRemove, Child: n.addr}
	for _, p := range slices.Clone(n.parents) {
		t.unlink(n, p)
		s.Parent = p
	}
	delete(t.nodes, n.addr)
	return []Step{s}
}

// Parents returns the parents of a node (one, or two during
// make-before-break).
func (t *Tree) Parents(a netip.Addr) []netip.Addr {
	if n := t.nodes[a.Unmap()]; n != nil {
		return slices.Clone(n.parents)
	}
	return nil
}

// Children returns the children of a node, sorted.
func (t *Tree) Children(a netip.Addr) []netip.Addr {
	if n := t.nodes[a.Unmap()]; n != nil {
		return slices.Clone(n.children)
	}
	return nil
}

// Entries returns the replication list of node a: its children with their
// levels, the RLE its replication plan is built from (NewPlanFromEntries
// with RoleITR for the ITR, RoleRTR at the node's level for an RTR).
func (t *Tree) Entries(a netip.Addr) []Entry {
	n := t.nodes[a.Unmap()]
	if n == nil {
		return nil
	}
	es := make([]Entry, 0, len(n.children))
	for _, c := range n.children {
		es = append(es, Entry{Addr: c, Level: uint8(t.nodes[c].level)})
	}
	return es
}

// Check verifies the tree: every edge goes from a lower level to a higher
// one (so there is no cycle), edges are recorded on both ends, and every
// joined node reaches the ITR.
func (t *Tree) Check() error {
	for _, n := range t.sorted() {
		for _, p := range n.parents {
			pn := t.nodes[p]
			if pn == nil || !slices.Contains(pn.children, n.addr) {
				return fmt.Errorf("replicate: tree: %s lists parent %s which does not list it", n.addr, p)
			}
			if pn.level >= n.level {
				return fmt.Errorf("%w: %s (level %d) under %s (level %d)", ErrTreeLoop, n.addr, n.level, p, pn.level)
			}
		}
		for _, c := range n.children {
			if cn := t.nodes[c]; cn == nil || !slices.Contains(cn.parents, n.addr) {
				return fmt.Errorf("replicate: tree: %s lists child %s which does not list it", n.addr, c)
			}
		}
		if len(n.parents) > 0 && !t.descends(n.addr, t.itr) {
			return fmt.Errorf("replicate: tree: %s does not reach the ITR", n.addr)
		}
	}
	return nil
}

func (t *Tree) sorted() []*tnode {
	ns := make([]*tnode, 0, len(t.nodes))
	for _, n := range t.nodes {
		ns = append(ns, n)
	}
	slices.SortFunc(ns, func(a, b *tnode) int {
		if a.level != b.level {
			return a.level - b.level
		}
		return a.addr.Compare(b.addr)
	})
	return ns
}

// String prints the tree for `rlocctl mcast tree S G`: a header, the number
// of nodes per level, the tree from the ITR down (each node with its level
// and child count; a node with two parents appears under both, marked
// "(2 parents)"), then RTRs that have joined nothing.
func (t *Tree) String() string {
	var b strings.Builder
	src := "*"
	if t.src.IsValid() {
		src = t.src.String()
	}
	fmt.Fprintf(&b, "replication tree (%s, %s), ITR %s\n", src, t.group, t.itr)
	count := map[int]int{}
	for _, n := range t.nodes {
		if n.level >= 0 {
			count[n.level]++
		}
	}
	var lv []int
	for l := range count {
		lv = append(lv, l)
	}
	slices.Sort(lv)
	b.WriteString("levels:")
	for _, l := range lv {
		if l >= ETRLevel {
			fmt.Fprintf(&b, " etr=%d", count[l])
		} else {
			fmt.Fprintf(&b, " %d=%d", l, count[l])
		}
	}
	b.WriteString("\n")
	var walk func(a netip.Addr, depth int)
	walk = func(a netip.Addr, depth int) {
		n := t.nodes[a]
		b.WriteString(strings.Repeat("  ", depth))
		switch {
		case n.level < 0:
			fmt.Fprintf(&b, "itr %s", a)
		case n.level >= ETRLevel:
			fmt.Fprintf(&b, "etr %s", a)
		default:
			fmt.Fprintf(&b, "rtr %s level %d", a, n.level)
		}
		if len(n.children) > 0 {
			fmt.Fprintf(&b, " children=%d", len(n.children))
		}
		if len(n.parents) > 1 {
			b.WriteString(" (2 parents)")
		}
		if n.leaving {
			b.WriteString(" leaving")
		}
		b.WriteString("\n")
		for _, c := range n.children {
			walk(c, depth+1)
		}
	}
	walk(t.itr, 0)
	for _, n := range t.sorted() {
		if n.level >= 0 && len(n.parents) == 0 {
			fmt.Fprintf(&b, "unjoined: rtr %s level %d children=%d\n", n.addr, n.level, len(n.children))
		}
	}
	return b.String()
}

// TreeNode is one node of a TreeGraph.
type TreeNode struct {
	Addr netip.Addr
	// Level is -1 for the ITR, 0..ETRLevel-1 for an RTR, ETRLevel for an
	// ETR.
	Level int
}

// TreeEdge is one join of a TreeGraph: Parent replicates to Child.
type TreeEdge struct {
	Parent, Child netip.Addr
}

// TreeGraph is a Tree as nodes and edges, for pictures: nodes sorted by
// level then address, edges by parent then child.
type TreeGraph struct {
	Nodes []TreeNode
	Edges []TreeEdge
}

// Graph returns the tree's nodes and edges (every node, joined or not; a
// failed or departed RTR is no longer in the tree).
func (t *Tree) Graph() TreeGraph {
	var g TreeGraph
	for _, n := range t.sorted() {
		g.Nodes = append(g.Nodes, TreeNode{Addr: n.addr, Level: n.level})
		for _, c := range n.children {
			g.Edges = append(g.Edges, TreeEdge{Parent: n.addr, Child: c})
		}
	}
	return g
}
