// Package mcast is the multicast role of the control plane: signal-free
// multicast (RFC 8378) and replication engineering (draft-coras-lisp-re).
// As an ETR it learns receivers on the site interfaces (IGMP/MLD) and
// registers their (S,G)s, choosing underlay groups
// (draft-ietf-lisp-group-mapping); as an RTR it registers its trees, takes
// the joins of its children and probes its parent; as an ITR it resolves
// (S,G) misses and keeps the answers fresh. The Map-Server's side of (S,G)
// registrations is in package mapserver. Documentation: docs/multicast.md.
package mcast

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// Mcast is the multicast role; it lives on the event loop like every other
// role.
type Mcast struct {
	c    *slowpath.Core
	cfg  *slowpath.MulticastConfig
	inst slowpath.MulticastInstaller
	// itr is the ITR role's configuration, nil without one: (S,G) misses
	// are resolved through its Map-Resolvers with its ITR-RLOCs.
	itr      *slowpath.ITRConfig
	itrRLOCs []wire.Address
	ustats   slowpath.Stats // the unicast counters it adds to
	wbuf     []byte
	wbuf2    []byte

	// Receivers learned on the site interfaces (ETR).
	rx *receivers
	// Groups this router registers: joined by receivers, or configured RTR
	// trees.
	local map[slowpath.SGKey]*sgLocal
	// Nonces of the latest registrations and pending joins.
	regNonces map[wire.Nonce]*sgLocal
	// (S,G) Map-Registers awaiting a Map-Notify.
	reg *request.Tracker
	// Tree joins of this RTR's children.
	joins *regstore.Store[slowpath.SGKey, []treeChild]
	// RLOC-probes (of parents, of ITR RLE entries): one try each, a reply
	// accepted from the probed address only; the probes of the latest
	// round of each kind, cancelled when the next round starts.
	probe             *request.Tracker
	parentOut, itrOut []*request.Request
	// ITR (S,G) resolutions.
	res     *request.Tracker
	byKey   map[slowpath.SGKey]*sgRes
	itrMaps map[slowpath.SGKey]*itrSG
	// Underlay group lookups in flight.
	lk *request.Tracker
	// Underlay groups joined, with their users.
	underlay map[replicate.UnderlayGroup]int
	// ugHeard is when the fast path last told that LISP data arrived on
	// an underlay group, as nanoseconds since ugEpoch (0: never); the
	// U-RLOC leaves (S,G) probes unanswered while it is within
	// Underlay.SuppressHold (mcast_underlay.go). Any goroutine.
	ugHeard atomic.Int64
	// ugEpoch is ugHeard's origin (a monotonic clock reading).
	ugEpoch time.Time
	// suppressing is the suppression state last logged (engine goroutine).
	suppressing bool
	// stopProbes makes this router ignore probes (tests: a failed RTR).
	stopProbes atomic.Bool

	authBuf []byte
	stats   slowpath.McastStats
	// domainKey is the multicast key as regstore.Verify takes it (none
	// without a secret); anyKeys are it and the Map-Servers' keys.
	domainKey, anyKeys []regstore.Key
}

// New builds the multicast role of cfg (defaults applied) on c and
// registers its handlers, which must come before the unicast roles' (it
// takes the messages that are multicast business and leaves the others):
// multicast misses, tree joins (Map-Registers), (S,G) Map-Notifies and
// Map-Replies, (S,G) RLOC-probes. itr is the ITR role's configuration (nil
// without one); inst must implement MulticastInstaller for an ITR or RTR.
// The caller runs Start and Stop on the event loop (Core.OnStart,
// Core.OnStop) in the order it wants relative to the other roles.
func New(c *slowpath.Core, cfg *slowpath.MulticastConfig, itr *slowpath.ITRConfig, inst slowpath.Installer) (*Mcast, error) {
	m := &Mcast{
		c: c, cfg: cfg, itr: itr,
		local:     map[slowpath.SGKey]*sgLocal{},
		regNonces: map[wire.Nonce]*sgLocal{},
		byKey:     map[slowpath.SGKey]*sgRes{},
		itrMaps:   map[slowpath.SGKey]*itrSG{},
		underlay:  map[replicate.UnderlayGroup]int{},
		ugEpoch:   time.Now(),
	}
	if inst != nil {
		m.inst, _ = inst.(slowpath.MulticastInstaller)
	}
	if (itr != nil || len(cfg.RTRs) > 0) && m.inst == nil {
		return nil, errors.New("slowpath config: multicast: the Installer must implement MulticastInstaller for an ITR or RTR")
	}
	// Group-name lookups: Retries retransmissions, the wait doubling.
	m.lk = request.New(c.Clock(), c, request.Config{Interval: cfg.RetryInterval, MaxTries: cfg.Retries + 1})
	m.res = m.lk
	m.probe = request.New(c.Clock(), c, request.Config{Interval: cfg.ProbeInterval, MaxTries: 1})
	m.reg = request.New(c.Clock(), c, request.Config{Interval: cfg.RetryInterval, MaxTries: cfg.Retries + 1})
	if itr != nil {
		m.res = request.New(c.Clock(), c, request.Config{Interval: itr.RetransmitInterval, MaxTries: itr.MaxTries})
		for _, a := range itr.ITRRLOCs {
			m.itrRLOCs = append(m.itrRLOCs, wire.IPAddress(a.Unmap()))
		}
	}
	if len(cfg.SiteInterfaces) > 0 || len(cfg.Listeners) > 0 {
		m.rx = newReceivers(m)
	}
	for i, k := range append([]slowpath.AuthKey{cfg.Key}, peerKeys(cfg.MapServers)...) {
		if k.Secret == "" {
			continue
		}
		rk := k.RegKey()
		if i == 0 {
			m.domainKey = []regstore.Key{rk}
		}
		m.anyKeys = append(m.anyKeys, rk)
	}
	m.joins = regstore.New(c.Clock(), c, regstore.Kind[slowpath.SGKey, []treeChild](joinKind{m}),
		regstore.OpenSite(&regstore.Site{Name: "tree-joins", Keys: m.domainKey}),
		regstore.Sink[slowpath.SGKey](joinSink{m}),
		regstore.Config{Timeout: cfg.JoinHold, MaxRegistrants: cfg.MaxRLE})
	c.HandleMiss(m.onMiss)
	c.Handle(slowpath.RouteMapRegister, m.onRegister)
	c.Handle(slowpath.RouteMapNotify, m.onMapNotify)
	c.Handle(slowpath.RouteMapReply, m.onMapReply)
	c.Handle(slowpath.RouteProbe, m.onRequest)
	return m, nil
}

// Stats returns the multicast counters (event loop only).
func (m *Mcast) Stats() slowpath.McastStats { return m.stats }

// UnicastStats returns what the role adds to the unicast counters:
// resolutions, timeouts, retransmissions and probes (event loop only).
func (m *Mcast) UnicastStats() slowpath.Stats {
	s := m.ustats
	lk := m.lk.Stats()
	s.Msgs[wire.TypeMapRequest].Sent += lk.Sent
	s.Msgs[wire.TypeECM].SendErrors += lk.SendErrors
	if m.res != m.lk {
		rs := m.res.Stats()
		s.Msgs[wire.TypeMapRequest].Sent += rs.Sent
		s.Msgs[wire.TypeECM].SendErrors += rs.SendErrors
		s.Retransmits += rs.Retransmits
		s.ResolveTimeouts += rs.GaveUp
	}
	return s
}

// Start registers the configured RTR trees, starts the receiver listeners
// and the probe timer (event loop).
func (m *Mcast) Start() {
	for _, r := range m.cfg.RTRs {
		k := slowpath.NewSGKey(r.IID, r.Source, r.Group)
		l := m.localFor(k)
		l.rtr, l.level = true, r.Level
		m.installRTR(l)
		m.register(l, false)
	}
	if m.rx != nil {
		m.rx.start()
	}
	var probe func(now time.Time)
	probe = func(now time.Time) {
		m.probeParents()
		if m.itr != nil {
			m.probeRLEs()
		}
		m.c.Schedule(now.Add(m.cfg.ProbeInterval), probe)
	}
	m.c.Schedule(m.c.Now().Add(m.cfg.ProbeInterval), probe)
}

// Stop withdraws what the router registered and stops the listeners (event
// loop, on close).
func (m *Mcast) Stop() {
	for _, l := range m.local {
		if l.parent.IsValid() {
			m.sendJoin(l, l.parent, true)
		}
		m.register(l, true)
	}
	if m.rx != nil {
		m.rx.stop()
	}
}

// sgLocal is an (S,G) this router registers: as an ETR with receivers, or
// as a configured RTR.
type sgLocal struct {
	key   slowpath.SGKey
	level uint8
	rtr   bool
	// ETR receivers present on a site interface.
	receivers bool
	// Underlay group chosen for it (draft-ietf-lisp-group-mapping).
	ug        replicate.UnderlayGroup
	ugPending bool
	lookup    *request.Request // the group-name lookup in flight
	// Registration with the Map-Servers: the latest nonce, the request
	// awaiting its Map-Notify (nil once answered or given up).
	nonce   wire.Nonce
	round   *request.Request
	refresh *slowpath.Timer
	// The merged RLE last learned from the Map-Server.
	merged []replicate.Entry
	failed map[netip.Addr]bool
	// Tree position: the parent joined and, during make-before-break, the
	// parent being left once the new one confirmed.
	parent, joining, leaving netip.Addr
	joinNonce                wire.Nonce
	probeOut                 bool
	probeMiss                int
	// RTR: children that joined, with their levels and hold timers.
	children  map[netip.Addr]*child
	departing bool
	departT   *slowpath.Timer
	departN   int
}

type child struct {
	level   uint8
	src     netip.AddrPort // where its latest join came from
	expires time.Time
}

func (m *Mcast) localFor(k slowpath.SGKey) *sgLocal {
	l := m.local[k]
	if l == nil {
		l = &sgLocal{key: k, level: m.cfg.Level, failed: map[netip.Addr]bool{}, children: map[netip.Addr]*child{}}
		m.local[k] = l
	}
	return l
}

// rleNodes is what this router registers for l: its RLOC at its level or,
// on a multicast underlay, the G-RLOC (and the U-RLOC when configured).
func (m *Mcast) rleNodes(l *sgLocal) []wire.RLENode {
	self := wire.RLENode{Level: l.level, Address: wire.IPAddress(m.cfg.RLOC)}
	if l.rtr || m.cfg.Underlay == nil || !l.ug.Group.IsValid() {
		return []wire.RLENode{self}
	}
	// The G-RLOC goes in as a plain address; an S-RLOC of a
	// source-specific underlay only matters for the join.
	g := wire.RLENode{Level: l.level, Address: wire.IPAddress(l.ug.Group)}
	if m.cfg.Underlay.RegisterURLOC {
		return []wire.RLENode{g, self}
	}
	return []wire.RLENode{g}
}

// register Map-Registers l with every Map-Server (RFC 8378 §5: merge bit,
// RLE with our entry), or withdraws it with TTL 0, and arms the refresh
// timer. A registration is a request of m.reg, one message per Map-Server
// (each signed with its key), resent with the same nonce up to Retries
// times, the wait doubling, until a verified Map-Notify; a withdrawal is
// sent once. The nonce stays in regNonces until the next registration of
// l, so that a Map-Notify arriving after the tracker gave up is still
// taken, as it always was.
func (m *Mcast) register(l *sgLocal, withdraw bool) {
	if l.ugPending && !withdraw {
		return // registered when the underlay group is known
	}
	if withdraw {
		m.stats.Withdraws++
	} else {
		m.stats.Registers++
	}
	delete(m.regNonces, l.nonce)
	m.reg.Cancel(l.round)
	l.round = nil
	l.nonce = m.reg.NewNonce()
	msgs := m.registers(l, withdraw)
	if withdraw {
		for i, b := range msgs {
			m.c.Send(m.cfg.MapServers[i].Addr, b, wire.TypeMapRegister)
		}
		l.refresh.Stop()
		return
	}
	m.regNonces[l.nonce] = l
	if len(msgs) > 0 {
		targets := make([]netip.AddrPort, len(msgs))
		for i := range msgs {
			targets[i] = m.cfg.MapServers[i].Addr
		}
		r, err := m.reg.Start(&request.Spec{
			Type: wire.TypeMapRegister, Targets: targets, Fanout: true, PerTarget: true, MatchSource: true,
			Done: func(r *request.Request, o request.Outcome) {
				if o == request.GaveUp {
					m.c.Log().Warn("no Map-Notify for (S,G) registration", "sg", l.key.String(), "tries", r.Tries())
				}
				if l.round == r {
					l.round = nil
				}
			},
		}, l.nonce, msgs...)
		if err != nil {
			m.c.Log().Error("cannot send (S,G) Map-Register", "sg", l.key.String(), "err", err)
		}
		l.round = r
	}
	if l.refresh == nil {
		l.refresh = m.c.Schedule(m.c.Now().Add(m.cfg.RegisterInterval), func(time.Time) { m.refresh(l) })
	} else {
		l.refresh.Reset(m.c.Now().Add(m.cfg.RegisterInterval))
	}
}

// registers encodes l's Map-Register for every Map-Server with l's current
// nonce, each signed with that Map-Server's key; none when one cannot be
// encoded.
func (m *Mcast) registers(l *sgLocal, withdraw bool) [][]byte {
	ttl := slowpath.TTLMinutes(3 * m.cfg.RegisterInterval)
	if withdraw {
		ttl = 0
	}
	rec := slowpath.SGRecord(l.key, ttl, m.rleNodes(l))
	msgs := make([][]byte, 0, len(m.cfg.MapServers))
	for _, p := range m.cfg.MapServers {
		reg := wire.MapRegister{
			Merge: true, WantMapNotify: !withdraw, Nonce: l.nonce,
			Auth:    p.Key.Auth(),
			Records: []wire.Record{rec},
		}
		b, err := reg.AppendSigned(nil, []byte(p.Key.Secret))
		if err != nil {
			m.c.Log().Error("cannot encode (S,G) Map-Register", "sg", l.key.String(), "err", err)
			return nil
		}
		msgs = append(msgs, b)
	}
	return msgs
}

// refresh re-registers l and refreshes its tree join.
func (m *Mcast) refresh(l *sgLocal) {
	if m.local[l.key] != l {
		return
	}
	m.register(l, false)
	if l.parent.IsValid() {
		m.sendJoin(l, l.parent, false)
	}
}

// drop withdraws l and forgets it (the last receiver left).
func (m *Mcast) drop(l *sgLocal) {
	m.register(l, true)
	if l.parent.IsValid() {
		m.sendJoin(l, l.parent, true)
	}
	if l.joining.IsValid() {
		m.sendJoin(l, l.joining, true)
	}
	if l.ug.Group.IsValid() {
		m.leaveUnderlay(l.ug)
	}
	delete(m.regNonces, l.nonce)
	delete(m.regNonces, l.joinNonce)
	m.reg.Cancel(l.round)
	l.round = nil
	l.refresh.Stop()
	m.lk.Cancel(l.lookup)
	delete(m.local, l.key)
}

// onMapNotify handles Map-Notifies for multicast: answers to our (S,G)
// registrations and tree joins (by nonce), and unsolicited ones carrying
// (S,G) records from a Map-Server or a departing parent (authenticated
// with the multicast key, acknowledged with a Map-Notify-Ack). It reports
// false for Map-Notifies that are not multicast business.
func (m *Mcast) onMapNotify(msg *slowpath.Msg) bool {
	src, b := msg.Src, msg.Raw
	nonce, ok := msg.Nonce()
	if !ok {
		return false
	}
	l, ours := m.regNonces[nonce]
	n, err := msg.MapNotify()
	if err != nil {
		if ours {
			m.c.Msg(wire.TypeMapNotify).BadParse++
			return true
		}
		return false
	}
	if ours {
		v, ok := m.verifyAny(b, &n.Auth)
		if !ok {
			m.c.Msg(wire.TypeMapNotify).BadAuth++
			m.c.Log().Warn("(S,G) Map-Notify authentication failed", "src", src, "sg", l.key.String())
			return true
		}
		m.c.Msg(wire.TypeMapNotify).Auth.Count(v)
		delete(m.regNonces, nonce)
		if nonce == l.joinNonce {
			m.joinConfirmed(l)
			return true
		}
		if q, st := m.reg.Match(src, nonce); st == request.Matched {
			m.reg.Complete(q)
		}
		for i := range n.Records {
			m.onMergedRecord(src, &n.Records[i])
		}
		return true
	}
	hasSG := false
	for i := range n.Records {
		if _, ok := slowpath.SGKeyOf(&n.Records[i].EID); ok {
			hasSG = true
		}
	}
	if !hasSG {
		return false
	}
	_, v, err := regstore.Verify(b, &n.Auth, m.domainKey)
	if err != nil {
		if _, ok := m.verifyAny(b, &n.Auth); ok {
			// A Map-Server's late answer to a registration we have since
			// re-sent with a new nonce.
			m.c.Msg(wire.TypeMapNotify).Ignored++
			return true
		}
		m.c.Msg(wire.TypeMapNotify).BadAuth++
		m.c.Log().Warn("unsolicited (S,G) Map-Notify authentication failed", "src", src)
		return true
	}
	m.c.Msg(wire.TypeMapNotify).Auth.Count(v)
	for i := range n.Records {
		m.onMergedRecord(src, &n.Records[i])
	}
	m.ack(src, n, &v)
	return true
}

// verifyAny checks a Map-Notify answering one of this router's messages:
// joins are signed with the multicast key, registrations with a
// Map-Server's key. It returns the variant that verified.
func (m *Mcast) verifyAny(b []byte, a *wire.Auth) (wire.AuthVariant, bool) {
	for i := range m.anyKeys {
		if _, v, err := regstore.Verify(b, a, m.anyKeys[i:i+1]); err == nil {
			return v, true
		}
	}
	return wire.AuthVariant{}, false
}

// ack answers an unsolicited Map-Notify, which verified as v, with a
// Map-Notify-Ack: the same nonce and records, signed with the multicast
// key in the Map-Notify's length and coverage unless the key sets them
// (RFC 9301 §5.7).
func (m *Mcast) ack(dst netip.AddrPort, n *wire.MapNotify, v *wire.AuthVariant) {
	a := wire.MapNotifyAck(*n)
	k := &m.domainKey[0]
	a.Auth = k.Auth(v, &m.authBuf)
	b, err := a.AppendSigned(m.wbuf2[:0], k.Secret)
	if err != nil {
		return
	}
	m.wbuf2 = b
	m.c.Send(dst, b, wire.TypeMapNotifyAck)
}

// onMergedRecord handles a merged (S,G) record from a Map-Server (or a
// departing parent): an ITR installs it; an ETR or RTR of the group updates
// its view of the tree.
func (m *Mcast) onMergedRecord(src netip.AddrPort, r *wire.Record) {
	k, ok := slowpath.SGKeyOf(&r.EID)
	if !ok {
		return
	}
	es, err := m.entries(r, replicate.RoleITR)
	if err != nil {
		m.refuse(k, src, err)
		return
	}
	if _, ok := m.itrMaps[k]; ok {
		m.installITR(k, slowpath.TTLDuration(r.TTL, slowpath.ReceiverDecidesTTL), es)
	} else if _, star := m.itrMaps[slowpath.NewSGKey(k.IID, netip.Prefix{}, k.Group)]; star && !k.Star() {
		// An (S,G) of a (*,G) the ITR uses: the Map-Server tells it
		// when (S,G) receivers register after the (*,G) answer.
		m.installITR(k, slowpath.TTLDuration(r.TTL, slowpath.ReceiverDecidesTTL), es)
	}
	if l := m.local[k]; l != nil {
		switch {
		case l.parent.IsValid() && src == m.cfg.ControlAddr(l.parent):
			m.setMerged(l, es, true) // the parent's departure notice
		case m.fromMapServer(src):
			m.setMerged(l, es, false)
		}
		// Anything else (a late join confirmation) is not a merged RLE.
	}
}

// fromMapServer reports whether src is one of the Map-Servers registered
// with.
func (m *Mcast) fromMapServer(src netip.AddrPort) bool {
	for _, p := range m.cfg.MapServers {
		if p.Addr.Addr().Unmap() == src.Addr() && p.Addr.Port() == src.Port() {
			return true
		}
	}
	return false
}

// entries validates a record's RLE for role: size, addresses, duplicates.
func (m *Mcast) entries(r *wire.Record, role replicate.Role) ([]replicate.Entry, error) {
	nodes, err := slowpath.RecordRLE(r)
	if err != nil {
		return nil, err
	}
	if len(nodes) > m.cfg.MaxRLE {
		return nil, fmt.Errorf("%w: %d entries, the maximum is %d", replicate.ErrRLETooLarge, len(nodes), m.cfg.MaxRLE)
	}
	es, err := replicate.EntriesFromRLE(nodes)
	if err != nil {
		return nil, err
	}
	if _, err := replicate.ValidateRLE(es, replicate.PlanConfig{Role: role, MaxEntries: m.cfg.MaxRLE}); err != nil {
		return nil, err
	}
	return es, nil
}

func (m *Mcast) refuse(k slowpath.SGKey, src netip.AddrPort, err error) {
	m.stats.RLERefused++
	m.c.Log().Warn("refusing RLE", "sg", k.String(), "from", src, "err", err)
}

// onMapReply handles Map-Replies to multicast requests: (S,G) resolutions,
// group-name lookups and parent probes. It reports false for others.
func (m *Mcast) onMapReply(msg *slowpath.Msg) bool {
	src := msg.Src
	nonce, ok := msg.Nonce()
	if !ok {
		return false
	}
	if m.probe.Lookup(nonce) != nil {
		q, st := m.probe.Match(src, nonce)
		if st != request.Matched {
			m.c.Msg(wire.TypeMapReply).Rejected++ // not from the probed RLOC
			return true
		}
		m.probe.Complete(q)
		switch v := q.Value().(type) {
		case *sgLocal:
			v.probeOut, v.probeMiss = false, 0
		case itrProbe:
			m.itrProbeAnswered(v)
		}
		return true
	}
	tr := m.res
	if tr.Lookup(nonce) == nil {
		if tr = m.lk; tr.Lookup(nonce) == nil {
			return false
		}
	}
	rep, err := msg.MapReply()
	if err != nil {
		m.c.Msg(wire.TypeMapReply).BadParse++
		return true
	}
	q, _ := tr.Match(src, nonce)
	tr.Complete(q)
	if tr == m.lk {
		m.onLookupReply(q.Value().(*sgLocal), src, rep)
		return true
	}
	r := q.Value().(*sgRes)
	for i := range rep.Records {
		rec := &rep.Records[i]
		k, ok := slowpath.SGKeyOf(&rec.EID)
		if !ok || k.IID != r.key.IID || !k.Group.Contains(r.key.Group.Addr()) || (!k.Star() && !k.Src.Contains(r.key.Src.Addr())) {
			m.c.Msg(wire.TypeMapReply).Rejected++
			continue
		}
		var es []replicate.Entry
		if len(rec.Locators) > 0 {
			var err error
			if es, err = m.entries(rec, replicate.RoleITR); err != nil {
				m.refuse(k, src, err)
				continue
			}
		}
		m.installITR(k, slowpath.TTLDuration(rec.TTL, slowpath.ReceiverDecidesTTL), es)
		m.ustats.Resolutions++
	}
	return true
}

// StopProbeReplies makes the router ignore the (S,G) RLOC-probes of its
// tree children (stop true) or answer them again: a failure as children
// see it, for tests and drills. Safe from any goroutine.
func (m *Mcast) StopProbeReplies(stop bool) { m.stopProbes.Store(stop) }

// sendProbe sends the RLOC-probe msg with nonce n to rloc's control
// address as a request of m.probe carrying v, and adds it to the round
// out; false when it could not be started.
func (m *Mcast) sendProbe(out *[]*request.Request, rloc netip.Addr, n wire.Nonce, msg []byte, v any) bool {
	r, err := m.probe.Start(&request.Spec{Type: wire.TypeMapRequest, Targets: []netip.AddrPort{m.cfg.ControlAddr(rloc)},
		MatchSource: true, Value: v}, n, msg)
	if err != nil {
		return false
	}
	*out = append(*out, r)
	m.ustats.ProbesSent++
	return true
}

// newProbeRound cancels the probes of the previous round in out: their
// replies no longer count (they were counted as misses).
func (m *Mcast) newProbeRound(out *[]*request.Request) {
	for _, r := range *out {
		m.probe.Cancel(r)
	}
	*out = (*out)[:0]
}

// sendCtl sends a control message for an RLOC to where ControlAddr says.
func (m *Mcast) sendCtl(rloc netip.Addr, b []byte, t wire.MessageType) {
	m.c.Send(m.cfg.ControlAddr(rloc), b, t)
}

// onRegister takes a Map-Register that is a tree join for a group this
// router is an RTR of; it leaves anything else to the Map-Server.
func (m *Mcast) onRegister(msg *slowpath.Msg) bool {
	reg, err := msg.MapRegister()
	if err != nil || !m.isJoin(reg) {
		return false
	}
	m.onJoin(msg.Src, msg.Raw, reg)
	return true
}

// peerKeys lists the keys of Map-Server peers.
func peerKeys(ps []slowpath.MapServerPeer) []slowpath.AuthKey {
	out := make([]slowpath.AuthKey, len(ps))
	for i := range ps {
		out[i] = ps[i].Key
	}
	return out
}
