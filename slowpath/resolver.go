package slowpath

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/wire"
)

// mapResolver is the Map-Resolver role (RFC 9301 §8.1): it answers ECM
// Map-Requests through the local Map-Server database or forwards them to
// remote Map-Servers, and answers negatively for EIDs nobody registered.
type mapResolver struct {
	e      *Engine
	cfg    *MapResolverConfig
	remote map[uint32]*bart.Table[netip.AddrPort]
	aggr   map[uint32]*bart.Table[struct{}]
}

func newMapResolver(e *Engine, c *MapResolverConfig) *mapResolver {
	mr := &mapResolver{e: e, cfg: c, remote: map[uint32]*bart.Table[netip.AddrPort]{}, aggr: map[uint32]*bart.Table[struct{}]{}}
	for _, ms := range c.MapServers {
		for _, p := range ms.Prefixes {
			t := mr.remote[p.IID]
			if t == nil {
				t = new(bart.Table[netip.AddrPort])
				mr.remote[p.IID] = t
			}
			t.Insert(p.Prefix, ms.Addr)
		}
	}
	for _, p := range c.Aggregates {
		t := mr.aggr[p.IID]
		if t == nil {
			t = new(bart.Table[struct{}])
			mr.aggr[p.IID] = t
		}
		t.Insert(p.Prefix, struct{}{})
	}
	return mr
}

// resolve handles a Map-Request the local Map-Server did not answer.
func (mr *mapResolver) resolve(port uint16, src netip.AddrPort, req *wire.MapRequest, raw []byte, ecm *wire.ECM, iid uint32, addr netip.Addr) {
	if !mr.forwardRemote(port, src, req, raw, ecm, iid, addr) {
		mr.e.negativeReply(port, src, req, iid, addr)
	}
}

// forwardRemote forwards req to the remote Map-Server responsible for addr
// in iid, if there is one. An ECM already marked for a Map-Server is not
// forwarded again.
func (mr *mapResolver) forwardRemote(port uint16, src netip.AddrPort, req *wire.MapRequest, raw []byte, ecm *wire.ECM, iid uint32, addr netip.Addr) bool {
	if t := mr.remote[iid]; t != nil && (ecm == nil || !ecm.ToMapServer) {
		if ms, ok := t.Lookup(addr); ok {
			mr.e.forward(ms, raw, ecm, req, port, src, addr, false)
			return true
		}
	}
	return false
}

// resolveName answers a lookup of the group name for the overlay group
// range g in iid (draft-ietf-lisp-group-mapping): from the Map-Server's
// configured or registered group mappings, else by forwarding to the remote
// Map-Server whose prefixes in iid cover the group (a provider's Map-Server
// is configured with the overlay group ranges it maps), else with a
// negative Map-Reply for the name, after which the ETR falls back to its
// unicast RLOC.
func (e *Engine) resolveName(port uint16, src netip.AddrPort, req *wire.MapRequest, raw []byte, ecm *wire.ECM, iid uint32, g netip.Prefix) {
	if e.ms != nil && e.ms.answerName(port, src, req, iid, g) {
		return
	}
	if e.mr != nil && e.mr.forwardRemote(port, src, req, raw, ecm, iid, g.Addr()) {
		return
	}
	ttl := time.Minute
	if e.mr != nil {
		ttl = e.mr.cfg.AggregateTTL
	}
	e.sendNegative(port, src, req, &wire.Record{TTL: ttlMinutes(ttl), Action: wire.ActionNativelyForward, EID: req.Records[0].EID})
}

// knownSets returns the prefix sets that count as EID space known to the
// mapping system in iid, registered prefixes first.
func (e *Engine) knownSets(iid uint32, out []prefixSet) []prefixSet {
	if e.ms != nil {
		if t := e.ms.regs[iid]; t != nil {
			out = append(out, bartSet[*regEntry]{t})
		}
		if t := e.ms.allowed[iid]; t != nil {
			out = append(out, bartSet[*sitePrefix]{t})
		}
	}
	if e.mr != nil {
		if t := e.mr.aggr[iid]; t != nil {
			out = append(out, bartSet[struct{}]{t})
		}
		if t := e.mr.remote[iid]; t != nil {
			out = append(out, bartSet[netip.AddrPort]{t})
		}
	}
	return out
}

// prefixSet is the part of a bart table the negative-prefix search needs;
// the tables hold different value types.
type prefixSet interface {
	LookupPrefixLPM(netip.Prefix) (netip.Prefix, bool)
	firstSubnetOtherThan(q, c netip.Prefix) bool
}

// negativePrefix computes the prefix of a negative Map-Reply for addr, an
// EID no registration covers (RFC 9301 §8.1): the least specific prefix
// that contains addr and no known EID prefix. Known prefixes are the
// registrations, the sites' configured prefixes, the aggregates and the
// remote Map-Servers' prefixes. When a known prefix c contains addr (EID
// space that is not registered), the answer lies inside c and inside says
// so; the caller then uses send-map-request instead of native-forward.
func negativePrefix(sets []prefixSet, addr netip.Addr) (p netip.Prefix, inside bool) {
	var c netip.Prefix
	full := netip.PrefixFrom(addr, addr.BitLen())
	for _, s := range sets {
		if lpm, ok := s.LookupPrefixLPM(full); ok && (!c.IsValid() || lpm.Bits() > c.Bits()) {
			c = lpm
		}
	}
	start := 0
	if c.IsValid() {
		start = c.Bits()
		inside = true
	}
	for l := start; l <= addr.BitLen(); l++ {
		q := netip.PrefixFrom(addr, l).Masked()
		clear := true
		for _, s := range sets {
			if s.firstSubnetOtherThan(q, c) {
				clear = false
				break
			}
		}
		if clear {
			return q, inside
		}
	}
	return full, inside
}

// negativeReply sends a negative Map-Reply for addr (RFC 9301 §8.1).
func (e *Engine) negativeReply(port uint16, src netip.AddrPort, req *wire.MapRequest, iid uint32, addr netip.Addr) {
	var buf [4]prefixSet
	p, inside := negativePrefix(e.knownSets(iid, buf[:0]), addr)
	act, ttl := wire.ActionNativelyForward, 15*time.Minute
	if inside {
		act, ttl = wire.ActionSendMapRequest, time.Minute
	}
	if e.mr != nil {
		if inside {
			ttl = e.mr.cfg.AggregateTTL
		} else {
			ttl = e.mr.cfg.NegativeTTL
		}
	}
	e.sendNegative(port, src, req, &wire.Record{TTL: ttlMinutes(ttl), MaskLen: uint8(p.Bits()), Action: act, EID: eidAddress(iid, p.Addr())})
}

// sendNegative answers req with the negative record rec (no locators).
func (e *Engine) sendNegative(port uint16, src netip.AddrPort, req *wire.MapRequest, rec *wire.Record) {
	b := e.wbuf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(wire.TypeMapReply)<<28|1)
	b = append(b, req.Nonce[:]...)
	b, err := rec.Append(b)
	if err != nil {
		e.stats.Msgs[wire.TypeMapReply].SendErrors++
		return
	}
	e.wbuf = b
	e.send(e.replyTarget(req.ITRRLOCs, port, src), b, wire.TypeMapReply)
	e.stats.NegativeReplies++
}

// forward sends a Map-Request on in an ECM: to an ETR (E bit) by the
// Map-Server or to a Map-Server (M bit) by the Map-Resolver (RFC 9301 §5.8).
// A request that came in an ECM keeps its inner IP and UDP headers, so the
// answer goes back to the ITR; a plain request is encapsulated with the
// requester as inner source.
func (e *Engine) forward(dst netip.AddrPort, raw []byte, in *wire.ECM, req *wire.MapRequest, port uint16, src netip.AddrPort, eid netip.Addr, toETR bool) {
	var out wire.ECM
	if in != nil {
		out = *in
	} else {
		out = wire.ECM{Src: innerSource(req, src.Addr(), eid), Dst: eid, SrcPort: port, DstPort: wire.ControlPort, TTL: 64}
	}
	out.ToETR, out.ToMapServer, out.DDT, out.Security = toETR, !toETR, false, false
	out.Message = raw
	b, err := out.Append(e.wbuf2[:0])
	if err != nil {
		e.stats.Msgs[wire.TypeECM].SendErrors++
		return
	}
	e.wbuf2 = b
	e.send(dst, b, wire.TypeECM)
	e.stats.Forwarded++
}

// innerSource picks the inner source address of an ECM for eid: an ITR-RLOC
// of eid's family, else the requester when it matches, else the
// unspecified address of that family.
func innerSource(req *wire.MapRequest, requester, eid netip.Addr) netip.Addr {
	for i := range req.ITRRLOCs {
		a := &req.ITRRLOCs[i]
		if (a.AFI == wire.AFIIPv4 || a.AFI == wire.AFIIPv6) && a.IP.Is4() == eid.Is4() {
			return a.IP
		}
	}
	if requester.Is4() == eid.Is4() {
		return requester
	}
	if eid.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// bartSet adapts a bart table to prefixSet.
type bartSet[V any] struct{ *bart.Table[V] }

func (s bartSet[V]) LookupPrefixLPM(p netip.Prefix) (netip.Prefix, bool) {
	lpm, _, ok := s.Table.LookupPrefixLPM(p)
	return lpm, ok
}

func (s bartSet[V]) firstSubnetOtherThan(q, c netip.Prefix) bool {
	for k := range s.Subnets(q) {
		if k != c {
			return true
		}
	}
	return false
}
