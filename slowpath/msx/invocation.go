package msx

import (
	"net/netip"

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
