package msx

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// The provider side of invocation: a peer's Map-Resolver forwards a
// Map-Request for one of our EIDs in an ECM straight to this Map-Server
// (RFC 9301 §5.8), as this side does in invoke mode, wrapped in a
// Map-Invoke (type 15, wire.MapInvoke) signed with the agreement's key
// over the whole message. A Map-Invoke is taken only from an agreement's
// peer, with the agreement's key, a timestamp within invokeSkew of our
// clock and a nonce not seen since (replay); its ECM is then handed to the
// roles after this one (the Map-Server) as if it had come on its own, and
// only when the agreement allows invocation and the EID lies in what it
// shares (filters, instance-IDs). Everything else is dropped without an
// answer and counted: a plain ECM from a peer (InvokeUnauthenticated, as
// a Map-Invoke that fails authentication), a stale timestamp
// (InvokeStale), a nonce seen before (InvokeReplayed), the nonce table
// full (Overloaded). ECMs from anybody else (ITRs, Map-Resolvers without
// an agreement) and DDT requests (RFC 8111, the DDT bit) are left to the
// roles after this one.

const (
	// invokeSkew is how far a Map-Invoke's timestamp may be from our
	// clock.
	invokeSkew = 30 * time.Second
	// maxInvokeNonces bounds the nonces remembered against replay: those
	// of the Map-Invokes taken in the last 2*invokeSkew (a timestamp
	// accepted now is refused as stale after that).
	maxInvokeNonces = 1 << 16
)

// seenKey is a Map-Invoke's nonce under its agreement.
type seenKey struct {
	a *agreement
	n wire.Nonce
}

// seenNonce is a remembered nonce and when it came.
type seenNonce struct {
	k  seenKey
	at time.Time
}

// nonces are the Map-Invoke nonces taken recently, in arrival order (a
// ring of at most maxInvokeNonces) with a set for lookup.
type nonces struct {
	set        map[seenKey]struct{}
	ring       []seenNonce
	head, size int
}

// add remembers k at now, forgetting those older than 2*invokeSkew; false
// when k was seen (replay) or the table is full of recent nonces.
func (t *nonces) add(k seenKey, now time.Time) (ok, full bool) {
	if t.set == nil {
		t.set = make(map[seenKey]struct{})
	}
	for t.size > 0 && now.Sub(t.ring[t.head].at) >= 2*invokeSkew {
		delete(t.set, t.ring[t.head].k)
		t.ring[t.head] = seenNonce{}
		t.head = (t.head + 1) % len(t.ring)
		t.size--
	}
	if _, seen := t.set[k]; seen {
		return false, false
	}
	if t.size == maxInvokeNonces {
		return false, true
	}
	if t.size == len(t.ring) {
		// Grow: unroll the ring into a larger slice.
		r := make([]seenNonce, 0, min(max(2*len(t.ring), 64), maxInvokeNonces))
		r = append(r, t.ring[t.head:]...)
		r = append(r, t.ring[:t.head]...)
		t.ring, t.head = r[:cap(r)], 0
	}
	t.ring[(t.head+t.size)%len(t.ring)] = seenNonce{k: k, at: now}
	t.size++
	t.set[k] = struct{}{}
	return true, false
}

// onInvoke takes a peer's Map-Invoke: authenticated, fresh and not seen
// before, its ECM goes on to onInvoked and the roles after it.
func (x *MSX) onInvoke(m *slowpath.Msg) bool {
	a, st := x.accept(m, x.inv.Parse)
	if a == nil {
		return true
	}
	if !a.verify(m.Raw, &x.inv.Auth) {
		a.stats.InvokeUnauthenticated++
		st.Rejected++
		return true
	}
	now := x.c.Now()
	if d := now.Unix() - int64(min(x.inv.Time, math.MaxInt64)); x.inv.Time > math.MaxInt64 || d > int64(invokeSkew/time.Second) || d < -int64(invokeSkew/time.Second) {
		a.stats.InvokeStale++
		st.Rejected++
		return true
	}
	switch ok, full := x.seen.add(seenKey{a, x.inv.Nonce}, now); {
	case full:
		a.stats.Overloaded++
		st.Rejected++
		return true
	case !ok:
		a.stats.InvokeReplayed++
		st.Rejected++
		return true
	}
	x.invBy = a
	x.c.DispatchECM(m, x.inv.ECM)
	x.invBy = nil
	return true
}

// onInvoked checks an ECM-carried Map-Request from an agreement's peer
// (handled before the Map-Server and Map-Resolver): only one that came in
// a Map-Invoke just verified (x.invBy) is taken.
func (x *MSX) onInvoked(m *slowpath.Msg) bool {
	a := x.peer(m.Src)
	if a == nil || m.Request == nil || len(m.Request.Records) == 0 || m.ECM.DDT {
		return false
	}
	if x.invBy != a {
		a.stats.InvokeUnauthenticated++
		x.c.Msg(wire.TypeECM).Rejected++
		return true
	}
	if !a.cfg.Allows(slowpath.MSXInvocation) {
		a.stats.InvokeDenied++
		x.c.Msg(wire.TypeECM).Rejected++
		return true
	}
	iid, p, ok := m.Request.Records[0].Prefix()
	if !ok || !a.share.has(prefixKey(slowpath.EIDPrefix{IID: iid, Prefix: netip.PrefixFrom(p.Addr(), p.Addr().BitLen())})) {
		a.stats.InvokeOutOfScope++
		x.c.Msg(wire.TypeECM).Rejected++
		return true
	}
	a.stats.InvokedBy++
	return false
}

// sendInvoke sends m to the peer's Map-Server at dst in an ECM (as a
// Map-Resolver forwards, RFC 9301 §5.8) wrapped in a Map-Invoke signed
// with a's key; false (counted) when it cannot be built.
func (x *MSX) sendInvoke(a *agreement, dst netip.AddrPort, m *slowpath.Msg, eid netip.Addr) bool {
	ecm, err := x.c.AppendForward(x.ecmBuf[:0], m, eid, false, nil)
	if err != nil {
		x.c.Msg(wire.TypeECM).SendErrors++
		return false
	}
	x.ecmBuf = ecm
	inv := wire.MapInvoke{Nonce: slowpath.NewNonce(), Auth: x.authFor(a), Time: uint64(max(x.c.Now().Unix(), 0)), ECM: ecm}
	b, ok := x.encode(a, inv.Append)
	if !ok {
		return false
	}
	_ = x.c.Send(dst, b, wire.TypeSharedExtension)
	return true
}

// The requester side of invocation, across peers. Every invoke-mode
// agreement whose peer prefixes cover the EID, from the first in the
// configuration on, offers its peers (Map-Servers) as candidates, each
// agreement's starting at the one that last answered. The peer's
// Map-Server answers the ITR itself, so this side never sees the answer;
// it sees the ITR's retransmission of the same Map-Request (same source,
// same nonce) when none came in time. Such a repeat within invokeWindow
// goes to the next candidate (counted InvokeFailovers on the agreement
// whose peer stayed silent, which then starts at its next peer); when
// every candidate had its try (at most maxInvokeTries), the request is
// left to the rest of the Map-Resolver (DDT, remote Map-Servers, a
// negative reply; counted InvokeGaveUp). The table of recent invocations
// holds at most maxInvocations, the oldest forgotten first.

const (
	// invokeWindow is how long a forwarded Map-Request is remembered: a
	// repeat within it is the ITR's retransmission.
	invokeWindow = 30 * time.Second
	// maxInvocations bounds the table of recent invocations.
	maxInvocations = 4096
	// maxInvokeTries bounds the candidates one Map-Request is sent to.
	maxInvokeTries = 8
)

// invKey identifies a Map-Request across the ITR's retransmissions.
type invKey struct {
	src   netip.AddrPort
	nonce wire.Nonce
}

// invocation is a recent invocation: the candidate it was last sent to
// (agreement ag, its peer start+j: j of the agreement's peers tried from
// start), how many candidates in all, when last.
type invocation struct {
	ag       *agreement
	start, j int
	tries    int
	at       time.Time
	// gaveUp: every candidate had its try; further repeats are left to
	// the rest of the Map-Resolver uncounted.
	gaveUp bool
}

// invocations is the bounded table of recent invocations, with its keys in
// arrival order for eviction.
type invocations struct {
	m    map[invKey]invocation
	ring []invKey
	next int
}

// put records v under k, forgetting the oldest entry when full.
func (t *invocations) put(k invKey, v invocation) {
	if t.m == nil {
		t.m = make(map[invKey]invocation)
	}
	if _, ok := t.m[k]; !ok {
		if len(t.ring) < maxInvocations {
			t.ring = append(t.ring, k)
		} else {
			delete(t.m, t.ring[t.next])
			t.ring[t.next] = k
			t.next = (t.next + 1) % maxInvocations
		}
	}
	t.m[k] = v
}

// nextAgreement returns the first invoke-mode agreement after prev whose
// peer prefixes cover addr, nil when none does (or prev was removed).
func (x *MSX) nextAgreement(prev *agreement, iid uint32, addr netip.Addr) *agreement {
	i := slices.Index(x.ags, prev)
	if i < 0 {
		return nil
	}
	for _, a := range x.ags[i+1:] {
		if a.cfg.Mode == slowpath.MSXModeInvoke && a.covers(iid, addr) {
			return a
		}
	}
	return nil
}

// invoke forwards m to a Map-Server of the peers covering addr, from
// agreement from on (RFC 9301 §5.8 ECM, as a Map-Resolver forwards): the
// first candidate, or the next one when m is the ITR's retransmission of
// a request already forwarded. An ECM that a Map-Resolver already sent to
// a Map-Server is not forwarded again. It reports false when the request
// is left to the rest of the Map-Resolver.
func (x *MSX) invoke(from int, m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	if m.ECM != nil && m.ECM.ToMapServer {
		return false
	}
	now := x.c.Now()
	k := invKey{src: netip.AddrPortFrom(m.Src.Addr().Unmap(), m.Src.Port()), nonce: m.Request.Nonce}
	first := x.ags[from]
	v, seen := x.invs.m[k]
	switch {
	case !seen || now.Sub(v.at) >= invokeWindow || (v.ag != nil && v.ag.gone):
		// New, or its agreement was removed since (dynamic.go).
		v = invocation{ag: first, start: first.cur}
	case v.gaveUp:
		return false
	default:
		// The ITR asks again: the candidate it was sent to stayed silent.
		prev := v.ag
		n := len(prev.cfg.Peers)
		prev.stats.InvokeFailovers++
		prev.cur = (v.start + v.j + 1) % n
		if v.j++; v.j >= n {
			if v.ag = x.nextAgreement(prev, iid, addr); v.ag != nil {
				v.start, v.j = v.ag.cur, 0
			}
		}
		if v.ag == nil || v.tries >= maxInvokeTries {
			first.stats.InvokeGaveUp++
			x.invs.put(k, invocation{gaveUp: true, at: now})
			return false
		}
	}
	a := v.ag
	v.tries++
	v.at = now
	x.invs.put(k, v)
	if x.sendInvoke(a, a.cfg.Peers[(v.start+v.j)%len(a.cfg.Peers)], m, addr) {
		a.stats.Invoked++
	}
	return true
}
