package msx

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// The provider side of invocation: a peer's Map-Resolver forwards a
// Map-Request for one of our EIDs in an ECM straight to this Map-Server
// (RFC 9301 §5.8), as this side does in invoke mode. An ECM from an
// agreement's peer is taken only when the agreement allows invocation and
// the EID lies in what it shares (filters, instance-IDs); otherwise it is
// dropped without an answer and counted. ECMs from anybody else (ITRs,
// Map-Resolvers without an agreement) are left to the roles after this
// one.

// onInvoked checks an ECM-carried Map-Request from an agreement's peer
// (handled before the Map-Server and Map-Resolver).
func (x *MSX) onInvoked(m *slowpath.Msg) bool {
	a := x.peer(m.Src)
	if a == nil || m.Request == nil || len(m.Request.Records) == 0 {
		return false
	}
	if !a.cfg.Allows(slowpath.MSXInvocation) {
		a.stats.InvokeDenied++
		x.c.Msg(wire.TypeECM).Rejected++
		return true
	}
	iid, p, ok := m.Request.Records[0].Prefix()
	if !ok || !a.share.has(slowpath.EIDPrefix{IID: iid, Prefix: netip.PrefixFrom(p.Addr(), p.Addr().BitLen())}) {
		a.stats.InvokeOutOfScope++
		x.c.Msg(wire.TypeECM).Rejected++
		return true
	}
	a.stats.InvokedBy++
	return false
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
	if x.c.Forward(a.cfg.Peers[(v.start+v.j)%len(a.cfg.Peers)], m, addr, false) {
		a.stats.Invoked++
	}
	return true
}
