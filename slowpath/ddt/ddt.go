// Package ddt is the DDT node role of LISP-DDT (RFC 8111 §7.1): a node of
// the Delegated Database Tree, configured as authoritative for some
// XEID-prefixes (instance-ID + EID prefix) and with delegations of parts of
// them to child DDT nodes or Map-Servers. It answers DDT Map-Requests (in
// an ECM with the D bit, RFC 8111 §6.3) with Map-Referrals (RFC 8111 §6.4):
// NODE-REFERRAL or MS-REFERRAL with the delegation's targets, a
// DELEGATION-HOLE for authoritative space delegated to no one, and
// NOT-AUTHORITATIVE for EIDs outside its authority; it can sign each
// referral record (RFC 8111 §6.4.1). The iterative DDT Map-Resolver
// (RFC 8111 §7.3) is not part of this package.
package ddt

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// Stats are the DDT node's counters.
type Stats struct {
	// Referrals counts the Map-Referrals sent, by referral type (index
	// wire.ReferralType).
	Referrals [6]uint64 `json:"-"`
	// NodeReferrals .. NotAuthoritative are Referrals by name, for JSON.
	NodeReferrals    uint64 `json:"node_referrals"`
	MSReferrals      uint64 `json:"ms_referrals"`
	DelegationHoles  uint64 `json:"delegation_holes"`
	NotAuthoritative uint64 `json:"not_authoritative"`
	// Signed counts the signatures made (a signed record is reused while
	// its signature has more than half its validity left).
	Signed uint64 `json:"signed"`
	// SignErrors counts records that could not be signed (sent unsigned).
	SignErrors uint64 `json:"sign_errors"`
	// Malformed counts DDT Map-Requests dropped because their EID record
	// is not an IPv4 or IPv6 prefix (also counted as rejected Map-Requests).
	Malformed uint64 `json:"malformed"`
}

// Delegation is a configured delegation as Node.Delegations lists it.
type Delegation struct {
	// IID and Prefix are the delegated XEID-prefix.
	IID    uint32       `json:"iid"`
	Prefix netip.Prefix `json:"eid"`
	// Type is "node" or "map-server".
	Type string `json:"type"`
	// Referral is the referral type requests for it are answered with.
	Referral string `json:"referral"`
	// Targets are the child DDT nodes or Map-Servers.
	Targets []slowpath.DDTTarget `json:"targets"`
	// Incomplete is the I bit its referrals carry.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Listing is what the node is configured with, for the management API.
type Listing struct {
	// Authoritative are the XEID-prefixes the node is authoritative for.
	Authoritative []slowpath.EIDPrefix `json:"authoritative"`
	// Delegations are the delegations, sorted by instance-ID and prefix.
	Delegations []Delegation `json:"delegations"`
	// ReferralTTL, HoleTTL and NotAuthoritativeTTL are the record TTLs.
	ReferralTTL         time.Duration `json:"referral_ttl"`
	HoleTTL             time.Duration `json:"hole_ttl"`
	NotAuthoritativeTTL time.Duration `json:"not_authoritative_ttl"`
	// Signed says whether referrals are signed, and with which key tag.
	Signed bool   `json:"signed"`
	KeyTag uint16 `json:"key_tag,omitempty"`
	// Stats are the node's counters.
	Stats Stats `json:"stats"`
}

// Node is the DDT node role.
type Node struct {
	c     *slowpath.Core
	cfg   *slowpath.DDTNodeConfig
	plain bool
	yield bool // leave requests outside the authority to the Map-Server
	auth  map[uint32]*bart.Table[struct{}]
	dele  map[uint32]*bart.Table[int] // index in cfg.Delegations
	sig   *slowpath.DDTSigner
	stats Stats
	ref   wire.MapReferral
	wbuf  []byte
}

// Options say which other roles share the router with the node.
type Options struct {
	// Plain: the router runs no Map-Server or Map-Resolver that would
	// answer plain Map-Requests, so the node answers them as DDT requests
	// (lig-like tools ask so).
	Plain bool
	// MapServer: the router runs a Map-Server too (RFC 8111 §7.2), which
	// answers the DDT requests for EIDs outside the node's authority
	// (MS-ACK, MS-NOT-REGISTERED) instead of the node's NOT-AUTHORITATIVE.
	MapServer bool
}

// New builds the DDT node on c from cfg (defaults applied) and registers
// its handlers: Map-Requests in an ECM with the DDT bit (RFC 8111 §6.3)
// and, with opt.Plain, plain Map-Requests.
func New(c *slowpath.Core, cfg *slowpath.DDTNodeConfig, opt Options) (*Node, error) {
	n := &Node{c: c, cfg: cfg, plain: opt.Plain, yield: opt.MapServer, auth: map[uint32]*bart.Table[struct{}]{},
		dele: map[uint32]*bart.Table[int]{}}
	for _, a := range cfg.Authoritative {
		t := n.auth[a.IID]
		if t == nil {
			t = new(bart.Table[struct{}])
			n.auth[a.IID] = t
		}
		t.Insert(a.Prefix, struct{}{})
	}
	for i, d := range cfg.Delegations {
		t := n.dele[d.IID]
		if t == nil {
			t = new(bart.Table[int])
			n.dele[d.IID] = t
		}
		t.Insert(d.Prefix, i)
	}
	var err error
	if n.sig, err = slowpath.NewDDTSigner(cfg.Signing, max(cfg.ReferralTTL, time.Hour)); err != nil {
		return nil, err
	}
	n.ref.Records = make([]wire.Record, 1)
	c.Handle(slowpath.RouteECM, n.onECM)
	c.Handle(slowpath.RouteMapRequest, n.onPlain)
	return n, nil
}

// Stats returns the node's counters (event loop only).
func (n *Node) Stats() Stats {
	s := n.stats
	if n.sig != nil {
		s.Signed, s.SignErrors = n.sig.Signed, n.sig.Errors
	}
	s.NodeReferrals = s.Referrals[wire.ReferralNode]
	s.MSReferrals = s.Referrals[wire.ReferralMS]
	s.DelegationHoles = s.Referrals[wire.ReferralDelegationHole]
	s.NotAuthoritative = s.Referrals[wire.ReferralNotAuthoritative]
	return s
}

// List returns the node's configuration and counters (event loop only).
func (n *Node) List() Listing {
	l := Listing{Authoritative: slices.Clone(n.cfg.Authoritative), ReferralTTL: n.cfg.ReferralTTL,
		HoleTTL: n.cfg.HoleTTL, NotAuthoritativeTTL: n.cfg.NotAuthoritativeTTL, Signed: n.sig != nil,
		Stats: n.Stats()}
	if n.sig != nil {
		l.KeyTag = n.sig.KeyTag()
	}
	for _, d := range n.cfg.Delegations {
		l.Delegations = append(l.Delegations, Delegation{IID: d.IID, Prefix: d.Prefix, Type: d.Type,
			Referral: delegationReferral(d.Type).String(), Targets: slices.Clone(d.Targets), Incomplete: d.Incomplete})
	}
	slices.SortFunc(l.Delegations, func(a, b Delegation) int {
		if a.IID != b.IID {
			return int(a.IID) - int(b.IID)
		}
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return l
}

// delegationReferral is the referral type of a delegation type.
func delegationReferral(typ string) wire.ReferralType {
	if typ == slowpath.DDTMapServer {
		return wire.ReferralMS
	}
	return wire.ReferralNode
}

// onECM takes the Map-Requests that come in an ECM with the DDT bit, but
// those for EIDs outside its authority when a Map-Server shares the router.
func (n *Node) onECM(m *slowpath.Msg) bool {
	if m.ECM == nil || !m.ECM.DDT {
		return false
	}
	if n.yield && !n.authoritative(m.Request) {
		return false
	}
	n.answer(m)
	return true
}

// authoritative reports whether the first EID of req lies inside an
// authoritative prefix (false for an EID that is no IP prefix).
func (n *Node) authoritative(req *wire.MapRequest) bool {
	iid, p, ok := req.Records[0].Prefix()
	if !ok {
		return false
	}
	t := n.auth[iid]
	if t == nil {
		return false
	}
	_, _, ok = t.LookupPrefixLPM(p)
	return ok
}

// onPlain takes plain Map-Requests when no other role answers them.
func (n *Node) onPlain(m *slowpath.Msg) bool {
	if !n.plain {
		return false
	}
	n.answer(m)
	return true
}

// answer sends the Map-Referral for m's request (RFC 8111 §7.1). Only the
// first EID record is answered, as a Map-Resolver does.
func (n *Node) answer(m *slowpath.Msg) {
	req := m.Request
	iid, p, ok := req.Records[0].Prefix()
	if !ok {
		n.c.Msg(wire.TypeMapRequest).Rejected++
		n.stats.Malformed++
		return
	}
	rec := &n.ref.Records[0]
	*rec = wire.Record{Locators: rec.Locators[:0]}
	typ := n.lookup(rec, iid, p)
	rec.Action = wire.Action(typ)
	n.ref.Nonce = req.Nonce
	n.ref.Signatures = n.ref.Signatures[:0]
	// NOT-AUTHORITATIVE records are not signed: they name whatever prefix
	// was asked, so each would cost an RSA signature (about 1.7 ms here)
	// that no cache could save; a resolver learns nothing from them to
	// trust anyway (the A bit is clear).
	if n.sig != nil && typ != wire.ReferralNotAuthoritative {
		if s, ok := n.sig.Sign(rec, n.c.Now()); ok {
			rec.SigCount = 1
			n.ref.Signatures = append(n.ref.Signatures, s)
		}
	}
	b, err := n.ref.Append(n.wbuf[:0])
	if err != nil {
		n.c.Msg(wire.TypeMapReferral).SendErrors++
		return
	}
	n.wbuf = b
	// The referral goes to the sender of the ECM, its outer source address
	// and port (RFC 8111 §7.1), not to the inner source: the ITR's
	// address and port stay in the ECM for the ETR's Map-Reply.
	if n.c.Send(m.Src, b, wire.TypeMapReferral) == nil {
		n.stats.Referrals[typ]++
	}
}

// lookup fills rec (TTL, prefix, flags, targets) with the answer for the
// XEID-prefix p in iid and returns its referral type.
func (n *Node) lookup(rec *wire.Record, iid uint32, p netip.Prefix) wire.ReferralType {
	cfg := n.cfg
	if t := n.dele[iid]; t != nil {
		if dp, i, ok := t.LookupPrefixLPM(p); ok {
			d := &cfg.Delegations[i]
			setPrefix(rec, iid, dp)
			rec.TTL, rec.Authoritative, rec.Incomplete = slowpath.TTLMinutes(cfg.ReferralTTL), true, d.Incomplete
			for _, tg := range d.Targets {
				rec.Locators = append(rec.Locators, wire.Locator{Priority: tg.Priority, Weight: tg.Weight,
					MPriority: 255, Reachable: true, Address: wire.IPAddress(tg.Addr)})
			}
			return delegationReferral(d.Type)
		}
	}
	if t := n.auth[iid]; t != nil {
		if ap, _, ok := t.LookupPrefixLPM(p); ok {
			hole, whole := n.hole(iid, ap, p)
			setPrefix(rec, iid, hole)
			rec.TTL, rec.Authoritative, rec.Incomplete = slowpath.TTLMinutes(cfg.HoleTTL), true, !whole
			return wire.ReferralDelegationHole
		}
	}
	setPrefix(rec, iid, p)
	rec.TTL, rec.Incomplete = slowpath.TTLMinutes(cfg.NotAuthoritativeTTL), true
	return wire.ReferralNotAuthoritative
}

// hole returns the least-specific prefix inside the authoritative prefix
// a that contains p and overlaps no delegation (RFC 8111 §7.1: the
// DELEGATION-HOLE covers as much undelegated space as it can, so the
// resolver asks once for all of it). When p itself contains delegations
// (a request for a prefix wider than they are), it returns p and whole
// false: the hole is not all of p.
func (n *Node) hole(iid uint32, a, p netip.Prefix) (netip.Prefix, bool) {
	t := n.dele[iid]
	if t == nil {
		return a, true
	}
	for l := a.Bits(); l <= p.Bits(); l++ {
		q := netip.PrefixFrom(p.Addr(), l).Masked()
		clear := true
		for range t.Subnets(q) {
			clear = false
			break
		}
		if clear {
			return q, true
		}
	}
	return p, false
}

// setPrefix sets rec's EID prefix.
func setPrefix(rec *wire.Record, iid uint32, p netip.Prefix) {
	rec.EID, rec.MaskLen = slowpath.EIDAddress(iid, p.Addr()), uint8(p.Bits())
}
