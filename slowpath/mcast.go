package slowpath

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// Signal-free multicast (RFC 8378) and replication engineering
// (draft-coras-lisp-re) in the control plane. mcast is the engine's
// multicast state; it lives on the engine goroutine like every other role.
// Documentation: docs/multicast.md.

// ResolvedMulticast is an (S,G) or (*,G) mapping with its replication list,
// as the ITR learns it from a Map-Reply or Map-Notify, or as an RTR builds
// it from the children that joined it.
type ResolvedMulticast struct {
	// IID is the instance-ID.
	IID uint32
	// Source is the S-EID prefix; mask length 0 for (*,G).
	Source netip.Prefix
	// Group is the G-EID prefix.
	Group netip.Prefix
	// TTL is how long the mapping lives.
	TTL time.Duration
	// RLE is the replication list (RFC 8060 §4.9), validated: at most
	// MaxRLE entries of unicast RLOCs or usable underlay groups, no
	// duplicate, no loop through this router. Empty means no receivers
	// (the fast path drops the group's packets).
	RLE []replicate.Entry
}

// MulticastInstaller receives (S,G) mappings; the daemon writes them into
// the map-cache (cache.MulticastKey) where fastpath/mcast picks them up.
// The Engine's Installer must implement it when the engine is an ITR or
// an RTR with multicast configured.
type MulticastInstaller interface {
	// InstallMulticast installs or replaces an (S,G)/(*,G) mapping.
	InstallMulticast(m *ResolvedMulticast)
	// RemoveMulticast removes it.
	RemoveMulticast(iid uint32, src, group netip.Prefix)
}

// sgKey identifies an (S,G) or (*,G) in an instance: src has mask length 0
// for (*,G) (the unspecified address of the group's family).
type sgKey struct {
	iid        uint32
	src, group netip.Prefix
}

func newSGKey(iid uint32, src, group netip.Prefix) sgKey {
	g := group.Masked()
	if !src.IsValid() || src.Bits() == 0 {
		return sgKey{iid: iid, src: netip.PrefixFrom(unspecifiedOf(g.Addr()), 0), group: g}
	}
	return sgKey{iid: iid, src: src.Masked(), group: g}
}

func unspecifiedOf(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// sgKeyOf reads the (S,G) of a multicast-info LCAF (RFC 8060 §4.5).
func sgKeyOf(a *wire.Address) (sgKey, bool) {
	iid, s, g, ok := a.SG()
	if !ok || !g.Addr().IsMulticast() {
		return sgKey{}, false
	}
	return newSGKey(iid, s, g), true
}

func (k sgKey) star() bool { return k.src.Bits() == 0 }

func (k sgKey) address() wire.Address { return wire.SGAddress(k.iid, k.src, k.group) }

func (k sgKey) srcAddr() netip.Addr {
	if k.star() {
		return netip.Addr{}
	}
	return k.src.Addr()
}

// String formats the key as "[iid] (S, G)".
func (k sgKey) String() string {
	s := "*"
	if !k.star() {
		s = k.src.String()
	}
	return fmt.Sprintf("[%d] (%s, %s)", k.iid, s, k.group)
}

// sgRecord returns the mapping record of an (S,G) with one RLE locator
// (RFC 8378 §4: the RLE carries the ETRs' and RTRs' RLOCs).
func sgRecord(k sgKey, ttl uint32, nodes []wire.RLENode) wire.Record {
	r := wire.Record{TTL: ttl, MaskLen: uint8(k.group.Bits()), EID: k.address(), Authoritative: true}
	if len(nodes) > 0 {
		r.Locators = []wire.Locator{{Priority: 255, MPriority: 1, MWeight: 100, Reachable: true, Address: wire.RLEAddress(nodes...)}}
	} else {
		r.Action = wire.ActionDrop
	}
	return r
}

// recordRLE collects the RLE entries of a record: every RLE locator's
// entries, and plain IP locators usable for multicast at level 128.
func recordRLE(r *wire.Record) ([]wire.RLENode, error) {
	var nodes []wire.RLENode
	for i := range r.Locators {
		l := &r.Locators[i]
		if ns, ok := l.Address.RLENodes(); ok {
			nodes = append(nodes, ns...)
			continue
		}
		if l.MPriority == 255 {
			continue
		}
		if l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6 {
			nodes = append(nodes, wire.RLENode{Level: replicate.ETRLevel, Address: l.Address})
			continue
		}
		return nil, fmt.Errorf("locator %d is %s, neither an RLE nor an RLOC", i, l.Address)
	}
	return nodes, nil
}

// mcast is the multicast state of an Engine.
type mcast struct {
	e    *Engine
	cfg  *MulticastConfig
	inst MulticastInstaller

	// Receivers learned on the site interfaces (ETR).
	rx *receivers
	// Groups this router registers: joined by receivers, or configured RTR
	// trees.
	local map[sgKey]*sgLocal
	// Nonces of pending registrations and joins.
	regNonces map[wire.Nonce]*sgLocal
	// Parent probes in flight.
	probes map[wire.Nonce]*sgLocal
	// ITR probes of RLE entries in flight.
	itrProbes map[wire.Nonce]itrProbe
	// ITR (S,G) resolutions.
	pending map[wire.Nonce]*sgRes
	byKey   map[sgKey]*sgRes
	itrMaps map[sgKey]*itrSG
	// Underlay group lookups in flight.
	lookups map[wire.Nonce]*sgLocal
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
	notify  wire.MapNotify
	reg     wire.MapRegister
	stats   McastStats
}

// McastStats counts multicast control events.
type McastStats struct {
	// Joins and Leaves are receiver (S,G)/(*,G) memberships learned and
	// lost (leave or timeout) on the site interfaces.
	Joins, Leaves uint64
	// BadReports are IGMP/MLD messages that did not parse.
	BadReports uint64
	// LocalGroups are report records for link-local or interface-local
	// groups, which are not registered (RFC 5771 §4, RFC 4291 §2.7).
	LocalGroups uint64
	// Registers and Withdraws are (S,G) Map-Registers sent with the RLE
	// entry and with TTL 0.
	Registers, Withdraws uint64
	// NotifiesSent, NotifyRetries and NotifyAcked count the Map-Server's
	// unsolicited Map-Notifies; NotifyGaveUp those never acknowledged.
	NotifiesSent, NotifyRetries, NotifyAcked, NotifyGaveUp uint64
	// Installs are (S,G) mappings given to the MulticastInstaller.
	Installs uint64
	// RLERefused are RLEs refused (too large, malformed, loops).
	RLERefused uint64
	// TreeJoins, TreeLeaves and Reparents count tree signalling;
	// ParentFailures the parents found dead by probing.
	TreeJoins, TreeLeaves, Reparents, ParentFailures uint64
	// ProbesSuppressed are (S,G) RLOC-probes left unanswered on the U-RLOC
	// (duplicate suppression).
	ProbesSuppressed uint64
	// URLOCsDown are U-RLOCs the ITR stopped replicating to because they
	// stopped answering (S,G) probes while the RLE has an underlay group.
	URLOCsDown uint64
}

func newMcast(e *Engine, c *MulticastConfig) (*mcast, error) {
	m := &mcast{
		e: e, cfg: c,
		local:     map[sgKey]*sgLocal{},
		regNonces: map[wire.Nonce]*sgLocal{},
		probes:    map[wire.Nonce]*sgLocal{},
		itrProbes: map[wire.Nonce]itrProbe{},
		pending:   map[wire.Nonce]*sgRes{},
		byKey:     map[sgKey]*sgRes{},
		itrMaps:   map[sgKey]*itrSG{},
		lookups:   map[wire.Nonce]*sgLocal{},
		underlay:  map[replicate.UnderlayGroup]int{},
		ugEpoch:   time.Now(),
	}
	if e.inst != nil {
		m.inst, _ = e.inst.(MulticastInstaller)
	}
	if (e.cfg.ITR != nil || len(c.RTRs) > 0) && m.inst == nil {
		return nil, errors.New("slowpath config: multicast: the Installer must implement MulticastInstaller for an ITR or RTR")
	}
	if len(c.SiteInterfaces) > 0 || len(c.Listeners) > 0 {
		m.rx = newReceivers(m)
	}
	return m, nil
}

// start runs on the engine goroutine when it starts.
func (m *mcast) start() {
	for _, r := range m.cfg.RTRs {
		k := newSGKey(r.IID, r.Source, r.Group)
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
		if m.e.itr != nil {
			m.probeRLEs()
		}
		m.e.timers.schedule(now.Add(m.cfg.ProbeInterval), probe)
	}
	m.e.timers.schedule(m.e.now.Add(m.cfg.ProbeInterval), probe)
}

// stop withdraws what the router registered and stops the listeners; it
// runs on the engine goroutine from Close.
func (m *mcast) stop() {
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
	key   sgKey
	level uint8
	rtr   bool
	// ETR receivers present on a site interface.
	receivers bool
	// Underlay group chosen for it (draft-ietf-lisp-group-mapping).
	ug        replicate.UnderlayGroup
	ugPending bool
	// Registration with the Map-Servers.
	nonce   wire.Nonce
	tries   int
	retry   *timer
	refresh *timer
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
	departT   *timer
	departN   int
}

type child struct {
	level   uint8
	expires time.Time
}

func (m *mcast) localFor(k sgKey) *sgLocal {
	l := m.local[k]
	if l == nil {
		l = &sgLocal{key: k, level: m.cfg.Level, failed: map[netip.Addr]bool{}, children: map[netip.Addr]*child{}}
		m.local[k] = l
	}
	return l
}

// rleNodes is what this router registers for l: its RLOC at its level or,
// on a multicast underlay, the G-RLOC (and the U-RLOC when configured).
func (m *mcast) rleNodes(l *sgLocal) []wire.RLENode {
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
// RLE with our entry), or withdraws it with TTL 0, and arms the
// retransmission and refresh timers.
func (m *mcast) register(l *sgLocal, withdraw bool) {
	e := m.e
	if l.ugPending && !withdraw {
		return // registered when the underlay group is known
	}
	if withdraw {
		m.stats.Withdraws++
	} else {
		m.stats.Registers++
	}
	delete(m.regNonces, l.nonce)
	l.nonce = newNonce()
	if !withdraw {
		m.regNonces[l.nonce] = l
	}
	m.sendRegister(l, withdraw)
	if withdraw {
		e.timers.stop(l.retry)
		e.timers.stop(l.refresh)
		return
	}
	l.tries = 0
	if l.retry == nil {
		l.retry = e.timers.schedule(e.now.Add(m.cfg.RetryInterval), func(time.Time) { m.retryRegister(l) })
	} else {
		e.timers.reset(l.retry, e.now.Add(m.cfg.RetryInterval))
	}
	if l.refresh == nil {
		l.refresh = e.timers.schedule(e.now.Add(m.cfg.RegisterInterval), func(time.Time) { m.refresh(l) })
	} else {
		e.timers.reset(l.refresh, e.now.Add(m.cfg.RegisterInterval))
	}
}

// sendRegister sends l's Map-Register with its current nonce.
func (m *mcast) sendRegister(l *sgLocal, withdraw bool) {
	e := m.e
	ttl := ttlMinutes(3 * m.cfg.RegisterInterval)
	if withdraw {
		ttl = 0
	}
	rec := sgRecord(l.key, ttl, m.rleNodes(l))
	for _, p := range m.cfg.MapServers {
		reg := wire.MapRegister{
			Merge: true, WantMapNotify: !withdraw, Nonce: l.nonce,
			Auth:    wire.NewAuth(p.Key.KeyID, p.Key.Alg, false),
			Records: []wire.Record{rec},
		}
		b, err := reg.AppendSigned(e.wbuf[:0], []byte(p.Key.Secret))
		if err != nil {
			e.log.Error("cannot encode (S,G) Map-Register", "sg", l.key.String(), "err", err)
			return
		}
		e.wbuf = b
		e.send(p.Addr, b, wire.TypeMapRegister)
	}
}

// retryRegister resends an unconfirmed registration with the same nonce,
// doubling the wait, Retries times.
func (m *mcast) retryRegister(l *sgLocal) {
	if m.local[l.key] != l || m.regNonces[l.nonce] != l {
		return
	}
	if l.tries >= m.cfg.Retries {
		m.e.log.Warn("no Map-Notify for (S,G) registration", "sg", l.key.String(), "tries", l.tries+1)
		return
	}
	l.tries++
	m.sendRegister(l, false)
	m.e.timers.reset(l.retry, m.e.now.Add(m.cfg.RetryInterval<<l.tries))
}

// refresh re-registers l and refreshes its tree join.
func (m *mcast) refresh(l *sgLocal) {
	if m.local[l.key] != l {
		return
	}
	m.register(l, false)
	if l.parent.IsValid() {
		m.sendJoin(l, l.parent, false)
	}
	if l.rtr {
		m.expireChildren(l)
	}
}

// drop withdraws l and forgets it (the last receiver left).
func (m *mcast) drop(l *sgLocal) {
	e := m.e
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
	e.timers.stop(l.retry)
	e.timers.stop(l.refresh)
	delete(m.local, l.key)
}

// onMapNotify handles Map-Notifies for multicast: answers to our (S,G)
// registrations and tree joins (by nonce), and unsolicited ones carrying
// (S,G) records from a Map-Server or a departing parent (authenticated
// with the multicast key, acknowledged with a Map-Notify-Ack). It reports
// false for Map-Notifies that are not multicast business.
func (m *mcast) onMapNotify(src netip.AddrPort, b []byte) bool {
	e := m.e
	if len(b) < 12 {
		return false
	}
	nonce := wire.Nonce(b[4:12])
	l, ours := m.regNonces[nonce]
	n := &m.notify
	if err := n.Parse(b); err != nil {
		if ours {
			e.stats.Msgs[wire.TypeMapNotify].BadParse++
			return true
		}
		return false
	}
	if ours {
		if !m.verifyAny(b, &n.Auth, l) {
			e.stats.Msgs[wire.TypeMapNotify].BadAuth++
			e.log.Warn("(S,G) Map-Notify authentication failed", "src", src, "sg", l.key.String())
			return true
		}
		delete(m.regNonces, nonce)
		if nonce == l.joinNonce {
			m.joinConfirmed(l)
			return true
		}
		e.timers.stop(l.retry)
		for i := range n.Records {
			m.onMergedRecord(src, &n.Records[i])
		}
		return true
	}
	hasSG := false
	for i := range n.Records {
		if _, ok := sgKeyOf(&n.Records[i].EID); ok {
			hasSG = true
		}
	}
	if !hasSG {
		return false
	}
	k := m.cfg.Key
	if k.Secret == "" || n.Auth.Alg != k.Alg || n.Auth.KeyID != k.KeyID ||
		wire.VerifyAuth(b, authDataOff, len(n.Auth.Data), n.Auth.Alg, []byte(k.Secret)) != nil {
		if m.verifyAny(b, &n.Auth, nil) {
			// A Map-Server's late answer to a registration we have since
			// re-sent with a new nonce.
			e.stats.Msgs[wire.TypeMapNotify].Ignored++
			return true
		}
		e.stats.Msgs[wire.TypeMapNotify].BadAuth++
		e.log.Warn("unsolicited (S,G) Map-Notify authentication failed", "src", src)
		return true
	}
	for i := range n.Records {
		m.onMergedRecord(src, &n.Records[i])
	}
	m.ack(src, n)
	return true
}

// verifyAny checks a Map-Notify answering one of l's messages: joins are
// signed with the multicast key, registrations with a Map-Server's key.
func (m *mcast) verifyAny(b []byte, a *wire.Auth, l *sgLocal) bool {
	keys := []AuthKey{m.cfg.Key}
	for _, p := range m.cfg.MapServers {
		keys = append(keys, p.Key)
	}
	for _, k := range keys {
		if k.Secret != "" && a.Alg == k.Alg && a.KeyID == k.KeyID &&
			wire.VerifyAuth(b, authDataOff, len(a.Data), a.Alg, []byte(k.Secret)) == nil {
			return true
		}
	}
	return false
}

// ack answers an unsolicited Map-Notify with a Map-Notify-Ack: the same
// nonce and records, signed (RFC 9301 §5.7).
func (m *mcast) ack(dst netip.AddrPort, n *wire.MapNotify) {
	e := m.e
	a := wire.MapNotifyAck(*n)
	k := m.cfg.Key
	m.authBuf = append(m.authBuf[:0], make([]byte, wire.AuthDataLen(k.Alg, false))...)
	a.Auth = wire.Auth{KeyID: k.KeyID, Alg: k.Alg, Data: m.authBuf}
	b, err := a.AppendSigned(e.wbuf2[:0], []byte(k.Secret))
	if err != nil {
		return
	}
	e.wbuf2 = b
	e.send(dst, b, wire.TypeMapNotifyAck)
}

// onMergedRecord handles a merged (S,G) record from a Map-Server (or a
// departing parent): an ITR installs it; an ETR or RTR of the group updates
// its view of the tree.
func (m *mcast) onMergedRecord(src netip.AddrPort, r *wire.Record) {
	k, ok := sgKeyOf(&r.EID)
	if !ok {
		return
	}
	es, err := m.entries(r, replicate.RoleITR)
	if err != nil {
		m.refuse(k, src, err)
		return
	}
	if _, ok := m.itrMaps[k]; ok {
		m.installITR(k, ttlDuration(r.TTL, receiverDecidesTTL), es)
	} else if _, star := m.itrMaps[newSGKey(k.iid, netip.Prefix{}, k.group)]; star && !k.star() {
		// An (S,G) of a (*,G) the ITR uses: the Map-Server tells it
		// when (S,G) receivers register after the (*,G) answer.
		m.installITR(k, ttlDuration(r.TTL, receiverDecidesTTL), es)
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
func (m *mcast) fromMapServer(src netip.AddrPort) bool {
	for _, p := range m.cfg.MapServers {
		if p.Addr.Addr().Unmap() == src.Addr() && p.Addr.Port() == src.Port() {
			return true
		}
	}
	return false
}

// entries validates a record's RLE for role: size, addresses, duplicates.
func (m *mcast) entries(r *wire.Record, role replicate.Role) ([]replicate.Entry, error) {
	nodes, err := recordRLE(r)
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

func (m *mcast) refuse(k sgKey, src netip.AddrPort, err error) {
	m.stats.RLERefused++
	m.e.log.Warn("refusing RLE", "sg", k.String(), "from", src, "err", err)
}

// onMapReply handles Map-Replies to multicast requests: (S,G) resolutions,
// group-name lookups and parent probes. It reports false for others.
func (m *mcast) onMapReply(src netip.AddrPort, b []byte) bool {
	if len(b) < 12 {
		return false
	}
	nonce := wire.Nonce(b[4:12])
	if l, ok := m.probes[nonce]; ok {
		delete(m.probes, nonce)
		l.probeOut, l.probeMiss = false, 0
		return true
	}
	if p, ok := m.itrProbes[nonce]; ok {
		delete(m.itrProbes, nonce)
		m.itrProbeAnswered(p)
		return true
	}
	r, isRes := m.pending[nonce]
	l, isLookup := m.lookups[nonce]
	if !isRes && !isLookup {
		return false
	}
	e := m.e
	rep := &e.rep
	if err := rep.Parse(b); err != nil {
		e.stats.Msgs[wire.TypeMapReply].BadParse++
		return true
	}
	if isLookup {
		delete(m.lookups, nonce)
		m.onLookupReply(l, src, rep)
		return true
	}
	m.finishRes(r)
	for i := range rep.Records {
		rec := &rep.Records[i]
		k, ok := sgKeyOf(&rec.EID)
		if !ok || k.iid != r.key.iid || !k.group.Contains(r.key.group.Addr()) || (!k.star() && !k.src.Contains(r.key.src.Addr())) {
			e.stats.Msgs[wire.TypeMapReply].Rejected++
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
		m.installITR(k, ttlDuration(rec.TTL, receiverDecidesTTL), es)
		e.stats.Resolutions++
	}
	return true
}

// McastStats returns the multicast counters.
func (e *Engine) McastStats() McastStats {
	var s McastStats
	_ = e.do(func() {
		if e.mc != nil {
			s = e.mc.stats
		}
	})
	return s
}

// McastStopProbeReplies makes the router ignore the (S,G) RLOC-probes of
// its tree children (stop true) or answer them again: a failure as children
// see it, for tests and drills.
func (e *Engine) McastStopProbeReplies(stop bool) {
	if e.mc != nil {
		e.mc.stopProbes.Store(stop)
	}
}

// sendCtl sends a control message for an RLOC to where ControlAddr says.
func (m *mcast) sendCtl(rloc netip.Addr, b []byte, t wire.MessageType) {
	m.e.send(m.cfg.ControlAddr(rloc), b, t)
}

// peekNonce returns the nonce of a control message (bytes 4..11 of every
// type that has one, RFC 9301 §5).
func peekNonce(b []byte) (wire.Nonce, bool) {
	if len(b) < 12 {
		return wire.Nonce{}, false
	}
	return wire.Nonce(b[4:12]), true
}

// mcastJoin handles a Map-Register that is a tree join for a group this
// router is an RTR of; it reports false for anything else.
func (e *Engine) mcastJoin(src netip.AddrPort, b []byte) bool {
	m := e.mc
	if err := m.reg.Parse(b); err != nil || !m.isJoin(&m.reg) {
		return false
	}
	m.onJoin(src, b, &m.reg)
	return true
}
