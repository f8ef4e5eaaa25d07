package mcast

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// Replication-engineering trees (draft-coras-lisp-re), the signalling:
//
//   - RTRs Map-Register (S,G) with the merge bit and their RLOC at their
//     level; the Map-Server's Map-Notify (and later unsolicited ones when
//     the RTR set changes) gives every registrant the merged RLE, from
//     which RTRs learn their upstream candidates and ETRs the leaf RTRs.
//   - A child (an ETR, or an RTR of level n > 0) picks its parent from the
//     merged RLE with replicate.Tree: the RTRs are added, then the ETR
//     entries join in address order through Tree.ParentFor, so every node
//     computes the same balanced assignment without talking to the others.
//   - The child joins its parent explicitly: a Map-Register sent straight
//     to the parent's control address, merge bit set, want-map-notify, with
//     the (S,G) record whose RLE holds the child's entry, signed with the
//     multicast key; TTL 0 leaves. The parent confirms with a Map-Notify
//     echoing the nonce. Joins are refreshed every RegisterInterval; a
//     parent drops children not refreshed within JoinHold.
//   - Level-0 RTRs do not join the ITR: the ITR replicates to the lowest
//     level of the merged RLE it resolves, which is exactly the level-0
//     RTRs.
//   - Failure: children RLOC-probe their parent (a Map-Request with the P
//     bit for the (S,G)) every ProbeInterval; ProbeMisses unanswered probes
//     mark it failed and the child re-joins the parent Tree.Fail would give.
//   - Graceful departure (Engine.McastDepart): the RTR sends its children
//     an unsolicited Map-Notify with the merged RLE without itself; each
//     child joins its new parent, and only when that join is confirmed
//     leaves the old one (make-before-break). The departing RTR keeps
//     replicating until its last child left (or Retries notices), then
//     withdraws its registration.
//   - An RTR installs (S,G) with an RLE of itself at its level and its
//     children one level up, so that the fast path's RTR plan copies to
//     exactly its children.

// errDeparting refuses joins to an RTR leaving the tree.
var errDeparting = errors.New("the RTR is leaving the replication tree")

// setMerged takes a new merged RLE for a group this router registers and
// re-evaluates its parent. fromParent says the RLE came from the current
// parent itself: a departure notice, in which a parent missing from the
// RLE is leaving; it is then avoided until the Map-Server's RLE no longer
// lists it either.
func (m *Mcast) setMerged(l *sgLocal, es []replicate.Entry, fromParent bool) {
	listed := func(a netip.Addr) bool {
		return slices.ContainsFunc(es, func(x replicate.Entry) bool { return x.Addr == a })
	}
	if fromParent {
		if !listed(l.parent) {
			l.failed[l.parent] = true
		}
		// A departure notice is the parent's view: keep the Map-Server's.
		m.choose(l)
		return
	}
	for a := range l.failed {
		if !listed(a) && a != l.parent && a != l.leaving {
			delete(l.failed, a)
		}
	}
	l.merged = slices.Clone(es)
	m.choose(l)
}

// tree computes the tree of l's merged RLE as every node computes it,
// with the failures this router detected applied.
func (m *Mcast) tree(l *sgLocal, itr netip.Addr) *replicate.Tree {
	return TreeOf(l.key, itr, l.merged, slices.Collect(maps.Keys(l.failed)))
}

// TreeOf computes the replication tree of k from its merged RLE the way
// every node of the tree computes it, rooted at the ITR itr (unspecified
// when unknown), with the RTRs in failed failed.
func TreeOf(k slowpath.SGKey, itr netip.Addr, merged []replicate.Entry, failed []netip.Addr) *replicate.Tree {
	t := replicate.NewTree(k.Src, k.Group, itr)
	_, _ = t.SetRTRs(merged)
	var etrs []netip.Addr
	for _, x := range merged {
		if x.Level >= replicate.ETRLevel && !x.Addr.IsMulticast() {
			etrs = append(etrs, x.Addr)
		}
	}
	// RTRs join first, lowest level first, then the ETRs in address order.
	rtrs := slices.Clone(merged)
	slices.SortFunc(rtrs, func(a, b replicate.Entry) int {
		if a.Level != b.Level {
			return int(a.Level) - int(b.Level)
		}
		return a.Addr.Compare(b.Addr)
	})
	for _, x := range rtrs {
		if x.Level < replicate.ETRLevel {
			_ = t.Join(x.Addr, t.ParentFor(x.Addr, int(x.Level)))
		}
	}
	slices.SortFunc(etrs, netip.Addr.Compare)
	for _, a := range etrs {
		_ = t.Join(a, t.ParentFor(a, replicate.ETRLevel))
	}
	for _, a := range slices.SortedFunc(slices.Values(failed), netip.Addr.Compare) {
		_, _ = t.Fail(a)
	}
	return t
}

// choose computes l's parent from the merged RLE (the same tree every node
// computes, with this router's failures applied) and, when it differs from
// the current one, joins the new parent; the old one is left once the new
// one confirmed (make-before-break).
func (m *Mcast) choose(l *sgLocal) {
	if l.rtr && l.level == 0 {
		return // level 0 is served by the ITR from the merged RLE
	}
	none := netip.IPv4Unspecified()
	t := m.tree(l, none)
	var want netip.Addr
	if ps := t.Parents(m.cfg.RLOC); len(ps) > 0 && ps[0] != none {
		want = ps[0]
	} else if p := t.ParentFor(m.cfg.RLOC, int(l.level)); p != none {
		want = p
	}
	cur := l.parent
	if l.joining.IsValid() {
		cur = l.joining
	}
	if want == cur {
		return
	}
	m.c.Log().Debug("tree parent change", "sg", l.key.String(), "self", m.cfg.RLOC, "from", cur, "to", want, "failed", len(l.failed), "merged", len(l.merged))
	if !want.IsValid() {
		// No RTR left: head-end replication from the ITR.
		for _, p := range []netip.Addr{l.parent, l.joining} {
			if p.IsValid() {
				m.sendJoin(l, p, true)
			}
		}
		l.parent, l.joining, l.leaving = netip.Addr{}, netip.Addr{}, netip.Addr{}
		return
	}
	if cur.IsValid() {
		m.stats.Reparents++
	}
	if l.joining.IsValid() && l.joining != want {
		m.sendJoin(l, l.joining, true) // abandon the join in progress
	}
	if l.parent.IsValid() {
		l.leaving = l.parent
	}
	l.joining = want
	m.sendJoin(l, want, false)
}

// sendJoin signals a join (or, with leave, a leave) of l to parent.
func (m *Mcast) sendJoin(l *sgLocal, parent netip.Addr, leave bool) {
	k := m.cfg.Key
	if k.Secret == "" {
		m.c.Log().Warn("cannot join a replication tree without multicast.key", "sg", l.key.String())
		return
	}
	ttl := slowpath.TTLMinutes(m.cfg.JoinHold)
	if leave {
		ttl = 0
		m.stats.TreeLeaves++
	} else {
		m.stats.TreeJoins++
	}
	n := slowpath.NewNonce()
	if !leave && parent == l.joining {
		delete(m.regNonces, l.joinNonce)
		l.joinNonce = n
		m.regNonces[n] = l
	}
	reg := wire.MapRegister{
		Merge: true, WantMapNotify: !leave, Nonce: n,
		Auth:    k.Auth(),
		Records: []wire.Record{slowpath.SGRecord(l.key, ttl, []wire.RLENode{{Level: l.level, Address: wire.IPAddress(m.cfg.RLOC)}})},
	}
	b, err := reg.AppendSigned(m.wbuf[:0], []byte(k.Secret))
	if err != nil {
		return
	}
	m.wbuf = b
	m.sendCtl(parent, b, wire.TypeMapRegister)
}

// joinConfirmed runs when the new parent confirmed a join: it becomes the
// parent and the old one is left (make-before-break).
func (m *Mcast) joinConfirmed(l *sgLocal) {
	if !l.joining.IsValid() {
		return
	}
	delete(l.failed, l.joining)
	l.parent, l.joining = l.joining, netip.Addr{}
	l.probeOut, l.probeMiss = false, 0
	if l.leaving.IsValid() && l.leaving != l.parent {
		m.sendJoin(l, l.leaving, true)
	}
	l.leaving = netip.Addr{}
	m.c.Log().Info("joined replication tree parent", "sg", l.key.String(), "parent", l.parent)
}

// probeParents RLOC-probes every parent (RFC 9301 §7.1, for the (S,G)),
// and handles parents that missed ProbeMisses probes in a row as failed.
func (m *Mcast) probeParents() {
	m.newProbeRound(&m.parentOut)
	for _, l := range m.local {
		p := l.parent
		if !p.IsValid() {
			continue
		}
		if l.probeOut {
			l.probeMiss++
			if l.probeMiss >= m.cfg.ProbeMisses {
				m.stats.ParentFailures++
				m.c.Log().Warn("replication tree parent failed", "sg", l.key.String(), "parent", p, "missed_probes", l.probeMiss)
				l.failed[p] = true
				l.probeOut, l.probeMiss = false, 0
				m.choose(l)
				continue
			}
		}
		n := m.probe.NewNonce()
		req := wire.MapRequest{
			Probe: true, Nonce: n,
			ITRRLOCs: []wire.Address{wire.IPAddress(m.cfg.RLOC)},
			Records:  []wire.EIDRecord{{MaskLen: uint8(l.key.Group.Bits()), EID: l.key.Address()}},
		}
		b, err := req.Append(m.wbuf[:0])
		if err != nil {
			continue
		}
		m.wbuf = b
		if m.sendProbe(&m.parentOut, p, n, b, l) {
			l.probeOut = true
		}
	}
}

// onRequest handles Map-Requests that are multicast business: RLOC-probes
// for an (S,G) this router replicates for (answered to the sender, unless
// probe replies are stopped) and (S,G) probes on a suppressed U-RLOC
// (left unanswered while the ETR receives through its G-RLOC). It
// reports false for the rest.
func (m *Mcast) onRequest(msg *slowpath.Msg) bool {
	src, req := msg.Src, msg.Request
	if !req.Probe || len(req.Records) == 0 {
		return false
	}
	k, ok := slowpath.SGKeyOf(&req.Records[0].EID)
	if !ok {
		return false
	}
	if m.probeSuppressed() {
		m.stats.ProbesSuppressed++
		return true
	}
	if m.stopProbes.Load() {
		return true
	}
	if l := m.local[k]; l == nil || l.departing && len(l.children) == 0 {
		m.c.Msg(wire.TypeMapRequest).Ignored++
		return true
	}
	rep := wire.MapReply{Probe: true, Nonce: req.Nonce, Records: []wire.Record{
		slowpath.SGRecord(k, slowpath.TTLMinutes(m.cfg.JoinHold), []wire.RLENode{{Level: m.local[k].level, Address: wire.IPAddress(m.cfg.RLOC)}}),
	}}
	rep.Records[0].Locators[0].Probed, rep.Records[0].Locators[0].Local = true, true
	b, err := rep.Append(m.wbuf[:0])
	if err != nil {
		return true
	}
	m.wbuf = b
	m.c.Send(src, b, wire.TypeMapReply)
	return true
}

// isJoin reports whether a Map-Register is a tree join for a group this
// router replicates for as an RTR.
func (m *Mcast) isJoin(reg *wire.MapRegister) bool {
	if len(reg.Records) == 0 {
		return false
	}
	k, ok := slowpath.SGKeyOf(&reg.Records[0].EID)
	if !ok {
		return false
	}
	l := m.local[k]
	return l != nil && l.rtr
}

// onJoin handles a tree join or leave from a child (see the top of this
// file) through the tree-join store: authenticated with the multicast key,
// each child a registrant (told apart by source, or xTR-ID when sent)
// expiring JoinHold after its latest join, confirmed with a Map-Notify
// when asked; the store reports the registration events.
func (m *Mcast) onJoin(src netip.AddrPort, b []byte, reg *wire.MapRegister) {
	res := m.joins.Register(src, b, reg)
	switch {
	case errors.Is(res.Err, regstore.ErrNoAuth), errors.Is(res.Err, regstore.ErrUnknownKey), errors.Is(res.Err, regstore.ErrAuth):
		m.c.Msg(wire.TypeMapRegister).BadAuth++
		m.c.Log().Warn("tree join authentication failed", "src", src)
	case res.Rejected > 0:
		m.c.Msg(wire.TypeMapRegister).Ignored += uint64(res.Rejected)
	}
	if res.Verified {
		m.c.Msg(wire.TypeMapRegister).Auth.Count(res.Auth)
	}
}

// joinKind tells the tree-join store about tree joins
// (draft-coras-lisp-re): keyed by the (S,G) of a tree this router is an
// RTR of, authorised by the multicast key alone (an open site), each child
// contributing its RLE entries one level below the RTR.
type joinKind struct{ m *Mcast }

// treeChild is one node a child's join contributes.
type treeChild struct {
	addr  netip.Addr
	level uint8
}

func (jk joinKind) Key(rec *wire.Record) (slowpath.SGKey, bool) {
	k, ok := slowpath.SGKeyOf(&rec.EID)
	if !ok {
		return k, false
	}
	l := jk.m.local[k]
	return k, l != nil && l.rtr
}

func (joinKind) Scope(k slowpath.SGKey) (uint32, netip.Prefix) { return k.IID, k.Group }

// Unchanged reports false: every refresh rebuilds the tree's children.
func (joinKind) Unchanged(*regstore.Entry[slowpath.SGKey, []treeChild], *regstore.Registrant[slowpath.SGKey, []treeChild], *wire.Record) bool {
	return false
}

// Value refuses a join that is not a child of this RTR (not an RLOC,
// itself, a level not below the RTR's), too many children, or any join
// while the RTR departs; refusals are counted and logged.
func (jk joinKind) Value(_ *regstore.Entry[slowpath.SGKey, []treeChild], r *regstore.Registrant[slowpath.SGKey, []treeChild], rec *wire.Record, v *[]treeChild) error {
	m := jk.m
	k, _ := slowpath.SGKeyOf(&rec.EID)
	err := m.joinValue(m.local[k], r, rec, v)
	if err != nil && !errors.Is(err, errDeparting) {
		m.refuse(k, netip.AddrPort{}, err)
	}
	return err
}

// joinValue reads a child's join of l into v.
func (m *Mcast) joinValue(l *sgLocal, r *regstore.Registrant[slowpath.SGKey, []treeChild], rec *wire.Record, v *[]treeChild) error {
	if l.departing {
		return errDeparting
	}
	nodes, err := slowpath.RecordRLE(rec)
	if err == nil && len(nodes) > m.cfg.MaxRLE {
		err = fmt.Errorf("%w: %d entries", replicate.ErrRLETooLarge, len(nodes))
	}
	if err != nil {
		return err
	}
	*v = (*v)[:0]
	added := 0
	for _, n := range nodes {
		a := n.Address.IP.Unmap()
		switch {
		case n.Address.AFI != wire.AFIIPv4 && n.Address.AFI != wire.AFIIPv6:
			return fmt.Errorf("%w: child %s is not an RLOC", replicate.ErrRLEAddress, n.Address)
		case a == m.cfg.RLOC:
			return fmt.Errorf("%w: %s would be its own child", replicate.ErrRLELoop, a)
		case n.Level <= l.level:
			return fmt.Errorf("%w: child %s at level %d cannot join level %d", replicate.ErrRLELoop, a, n.Level, l.level)
		}
		if _, ok := l.children[a]; !ok || (r != nil && !slices.ContainsFunc(r.Value, func(c treeChild) bool { return c.addr == a })) {
			added++
		}
		*v = append(*v, treeChild{addr: a, level: n.Level})
	}
	if added > 0 && len(l.children)+added > m.cfg.MaxRLE {
		return fmt.Errorf("%w: more than %d children", replicate.ErrRLETooLarge, m.cfg.MaxRLE)
	}
	return nil
}

// Changed rebuilds the RTR's children from the registrants of its tree and
// re-installs its replication when they changed.
func (jk joinKind) Changed(e *regstore.Entry[slowpath.SGKey, []treeChild]) {
	m := jk.m
	l := m.local[e.Key]
	if l == nil || !l.rtr {
		return
	}
	kids := make(map[netip.Addr]*child, len(l.children))
	for _, r := range e.Registrants() {
		for _, c := range r.Value {
			kids[c.addr] = &child{level: c.level, src: r.Source, expires: r.Expires}
		}
	}
	changed := len(kids) != len(l.children)
	for a := range kids {
		if _, ok := l.children[a]; !ok {
			changed = true
		}
	}
	l.children = kids
	if changed {
		m.installRTR(l)
	}
}

// Confirm echoes the join with this RTR listed before the child, so that
// it never reads as a departure notice.
func (jk joinKind) Confirm(_ *regstore.Entry[slowpath.SGKey, []treeChild], rec *wire.Record, _ *wire.MapRegister) wire.Record {
	m := jk.m
	key, _ := slowpath.SGKeyOf(&rec.EID)
	l := m.local[key]
	if l == nil {
		return *rec
	}
	nodes, _ := slowpath.RecordRLE(rec)
	nodes = append([]wire.RLENode{{Level: l.level, Address: wire.IPAddress(m.cfg.RLOC)}}, nodes...)
	return slowpath.SGRecord(key, rec.TTL, nodes)
}

// joinSink reports tree-join events as registration events of the
// (S,G)'s group, as a Map-Server reports (S,G) registrations; a leave
// reads as accepted, as it always did.
type joinSink struct{ m *Mcast }

func (js joinSink) RegistrationEvent(ev *regstore.Event[slowpath.SGKey]) {
	m := js.m
	var kind slowpath.EventKind
	reason := ""
	switch ev.Kind {
	case regstore.Accepted, regstore.Withdrawn:
		kind = slowpath.EventRegistrationAccepted
	case regstore.Rejected:
		kind, reason = slowpath.EventRegistrationRejected, ev.Reason.Error()
		if errors.Is(ev.Reason, regstore.ErrNoAuth) || errors.Is(ev.Reason, regstore.ErrUnknownKey) {
			reason = "authentication failed: " + reason
		}
	case regstore.Expired:
		kind = slowpath.EventRegistrationExpired
		m.c.Log().Info("tree child expired", "sg", ev.Key.String(), "child", ev.Source)
	default:
		return
	}
	m.joinEvent(kind, ev.Key, ev.Source, reason)
}

// rtrRLE is the RLE an RTR installs: itself at its level, its children one
// level up (so that its plan copies to all of them).
func (m *Mcast) rtrRLE(l *sgLocal) []replicate.Entry {
	es := []replicate.Entry{{Addr: m.cfg.RLOC, Level: l.level}}
	kids := make([]netip.Addr, 0, len(l.children))
	for a := range l.children {
		kids = append(kids, a)
	}
	slices.SortFunc(kids, netip.Addr.Compare)
	for _, a := range kids {
		es = append(es, replicate.Entry{Addr: a, Level: l.level + 1})
	}
	return es
}

// installRTR installs the RTR's (S,G) replication to its children.
func (m *Mcast) installRTR(l *sgLocal) {
	es := m.rtrRLE(l)
	if _, err := replicate.ValidateRLE(es, replicate.PlanConfig{Role: replicate.RoleRTR, Level: int(l.level),
		Self: []netip.Addr{m.cfg.RLOC}, MaxEntries: m.cfg.MaxRLE}); err != nil {
		m.refuse(l.key, netip.AddrPort{}, err)
		return
	}
	m.inst.InstallMulticast(&slowpath.ResolvedMulticast{IID: l.key.IID, Source: l.key.Src, Group: l.key.Group,
		TTL: m.cfg.JoinHold, RLE: es})
	m.stats.Installs++
}

// joinEvent reports a tree join as a registration event of the (S,G)'s
// group, as a Map-Server reports (S,G) registrations.
func (m *Mcast) joinEvent(kind slowpath.EventKind, k slowpath.SGKey, src netip.AddrPort, reason string) {
	if m.c.EventsOn() {
		m.c.Event(slowpath.Event{Kind: kind, EID: slowpath.EIDPrefix{IID: k.IID, Prefix: k.Group}, Source: src, Reason: reason})
	}
}

// depart starts the graceful departure of an RTR from l's tree.
func (m *Mcast) depart(l *sgLocal) {
	l.departing = true
	var send func(time.Time)
	send = func(time.Time) {
		if m.local[l.key] != l {
			return
		}
		if len(l.children) == 0 || l.departN > m.cfg.Retries {
			m.c.Log().Info("RTR left the replication tree", "sg", l.key.String(), "children_left", len(l.children))
			m.register(l, true)
			m.inst.RemoveMulticast(l.key.IID, l.key.Src, l.key.Group)
			delete(m.local, l.key)
			return
		}
		l.departN++
		without := slices.DeleteFunc(slices.Clone(l.merged), func(x replicate.Entry) bool { return x.Addr == m.cfg.RLOC })
		nodes := make([]wire.RLENode, len(without))
		for i, x := range without {
			nodes[i] = wire.RLENode{Level: x.Level, Address: wire.IPAddress(x.Addr)}
		}
		k := m.cfg.Key
		n := wire.MapNotify{Nonce: slowpath.NewNonce(), Auth: k.Auth(),
			Records: []wire.Record{slowpath.SGRecord(l.key, slowpath.TTLMinutes(m.cfg.JoinHold), nodes)}}
		b, err := n.AppendSigned(nil, []byte(k.Secret))
		if err == nil {
			for a := range l.children {
				m.sendCtl(a, b, wire.TypeMapNotify)
			}
		}
		l.departT = m.c.Schedule(m.c.Now().Add(m.cfg.RetryInterval), send)
	}
	send(m.c.Now())
}

// McastDepart makes this RTR leave the tree of (S,G) gracefully,
// make-before-break: its children join their new parents first, then leave
// it, then it withdraws its registration.
// (event loop only).
func (m *Mcast) Depart(iid uint32, src, group netip.Prefix) error {
	l := m.local[slowpath.NewSGKey(iid, src, group)]
	if l == nil || !l.rtr {
		return fmt.Errorf("slowpath: not an RTR of %v", slowpath.NewSGKey(iid, src, group))
	}
	m.depart(l)
	return nil
}

// McastTreeInfo is one router's view of the replication tree of an (S,G),
// for `rlocctl mcast tree S G`.
type McastTreeInfo struct {
	// IID, Source and Group name the tree; Source has mask length 0 for (*,G).
	IID           uint32
	Source, Group netip.Prefix
	// Role is "itr", "rtr" or "etr" (what this router is in the tree), or
	// "map-server" (no node of it: the tree computed from its merged RLE).
	Role string
	// Level is this router's level (-1 for the ITR).
	Level int
	// Parent is the parent joined (invalid: none, or the ITR); Joining a
	// parent being joined; Leaving a parent left once Joining confirms.
	Parent, Joining, Leaving netip.Addr
	// Upstream are the RTRs below this router's level in the merged RLE
	// (an RTR's upstream candidates); Failed those found dead.
	Upstream, Failed []netip.Addr
	// Children are the children that joined (RTR) or, for the ITR, the
	// entries of the lowest level.
	Children []netip.Addr
	// Merged is the merged RLE as last learned.
	Merged []replicate.Entry
	// Tree is the whole tree as computed from Merged; Graph is the same
	// tree as nodes and edges (for pictures).
	Tree  string
	Graph replicate.TreeGraph
}

// String prints the view: a summary, then the computed tree.
func (t McastTreeInfo) String() string {
	var b strings.Builder
	src := "*"
	if t.Source.Bits() > 0 {
		src = t.Source.String()
	}
	fmt.Fprintf(&b, "(%s, %s) iid %d: %s", src, t.Group, t.IID, t.Role)
	if t.Level >= 0 {
		fmt.Fprintf(&b, " level %d", t.Level)
	}
	b.WriteString("\n")
	if t.Parent.IsValid() {
		fmt.Fprintf(&b, "parent %s\n", t.Parent)
	}
	if t.Joining.IsValid() {
		fmt.Fprintf(&b, "joining %s\n", t.Joining)
	}
	if len(t.Upstream) > 0 {
		fmt.Fprintf(&b, "upstream candidates %v\n", t.Upstream)
	}
	if len(t.Failed) > 0 {
		fmt.Fprintf(&b, "failed %v\n", t.Failed)
	}
	if len(t.Children) > 0 {
		fmt.Fprintf(&b, "children %v\n", t.Children)
	}
	b.WriteString(t.Tree)
	return b.String()
}

// McastTree returns this router's view of the tree of (S,G) (src invalid:
// (*,G)); ok is false when the router knows nothing of it (event loop
// only).
func (m *Mcast) Tree(iid uint32, src, group netip.Prefix) (info McastTreeInfo, ok bool) {
	k := slowpath.NewSGKey(iid, src, group)
	func() {
		info = McastTreeInfo{IID: k.IID, Source: k.Src, Group: k.Group, Level: -1}
		if l := m.local[k]; l != nil {
			ok = true
			info.Role, info.Level = "etr", int(l.level)
			if l.rtr {
				info.Role = "rtr"
			}
			info.Parent, info.Joining, info.Leaving = l.parent, l.joining, l.leaving
			info.Merged = slices.Clone(l.merged)
			for _, x := range l.merged {
				if int(x.Level) < int(l.level) {
					info.Upstream = append(info.Upstream, x.Addr)
				}
			}
			for a := range l.failed {
				info.Failed = append(info.Failed, a)
			}
			slices.SortFunc(info.Failed, netip.Addr.Compare)
			for a := range l.children {
				info.Children = append(info.Children, a)
			}
			slices.SortFunc(info.Children, netip.Addr.Compare)
			t := m.tree(l, netip.IPv4Unspecified())
			info.Tree, info.Graph = t.String(), t.Graph()
			return
		}
		if ent := m.itrMaps[k]; ent != nil {
			ok = true
			info.Role = "itr"
			info.Merged = slices.Clone(ent.rle)
			itr := netip.IPv4Unspecified()
			if m.itr != nil && len(m.itr.ITRRLOCs) > 0 {
				itr = m.itr.ITRRLOCs[0]
			}
			low := 256
			for _, x := range ent.rle {
				low = min(low, int(x.Level))
			}
			for _, x := range ent.rle {
				if int(x.Level) == low {
					info.Children = append(info.Children, x.Addr)
				}
			}
			l := &sgLocal{key: k, merged: ent.rle}
			t := m.tree(l, itr)
			info.Tree, info.Graph = t.String(), t.Graph()
		}
	}()
	return info, ok
}

// TreeKeys lists the (S,G) whose tree Tree describes: those this router
// registers or replicates for, and those its ITR resolved (event loop
// only), sorted.
func (m *Mcast) TreeKeys() []slowpath.SGKey {
	ks := slices.Collect(maps.Keys(m.local))
	for k := range m.itrMaps {
		if m.local[k] == nil {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, slowpath.SGKey.Compare)
	return ks
}
