package cpnp

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// The role: CPNP on the wire (docs/cpnp.md "transport"). A CPNP message
// travels in a LISP shared extension message (type 15, RFC 8113 §3) of
// sub-type SubType on the control port, so the negotiation runs on the
// control plane's one event loop beside the interconnect it provisions:
//
//	 0                   1                   2                   3
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Type=15|      Sub-type 4086    |           Reserved            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Nonce (8 bytes)                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           CPNP message (msg.go, its own Length) ...           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Ed25519 signature (64 bytes) of everything before it     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A message that asks for an answer (Quotation, Update, Accept, Withdraw)
// is a request of the request.Tracker under a fresh nonce, retransmitted
// until answered; the answer (Offer, Decline, Processing, Fail, Ack)
// carries the same nonce, and a retransmitted request is answered again
// from a bounded cache of answers.

// SubType is the shared-extension sub-type carrying CPNP (next to the
// interconnect's, wire/interconnect.go; not registered with IANA).
const SubType wire.SharedSubType = 4086

const (
	frameHdrLen = 12
	sigLen      = ed25519.SignatureSize
	maxAnswers  = 256
)

// Provisioner is the interconnect an agreement provisions (msx.MSX).
type Provisioner interface {
	// SetAgreement adds or replaces an interconnect agreement.
	SetAgreement(cfg slowpath.MSXAgreement) error
	// RemoveAgreement removes one; false when there was none.
	RemoveAgreement(name string) bool
}

// WireStats count the role's traffic and what it refused.
type WireStats struct {
	// Sent and Received count CPNP messages (retransmissions included).
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	// Malformed counts messages that do not parse; BadSignature those
	// whose signature fails; Untrusted those signed by a key not on the
	// trust list; IdentityChanged those from an address bound to another
	// trusted identity.
	Malformed       uint64 `json:"malformed"`
	BadSignature    uint64 `json:"bad_signature"`
	Untrusted       uint64 `json:"untrusted"`
	IdentityChanged uint64 `json:"identity_changed"`
	// AnswersResent counts answers sent again for a retransmitted request.
	AnswersResent uint64 `json:"answers_resent"`
	// Orders counts quotations started, GaveUp requests that went
	// unanswered, DeclinedOffers offers this side declined.
	Orders         uint64 `json:"orders"`
	GaveUp         uint64 `json:"gave_up"`
	DeclinedOffers uint64 `json:"declined_offers"`
	// Provisioned and Deprovisioned count interconnect agreements set and
	// removed, ProvisionErrors those the interconnect refused.
	Provisioned     uint64 `json:"provisioned"`
	Deprovisioned   uint64 `json:"deprovisioned"`
	ProvisionErrors uint64 `json:"provision_errors"`
	// PeersFull counts messages from a new address refused because
	// MaxContacts peers are kept already.
	PeersFull uint64 `json:"peers_full"`
}

// peer is what the role keeps of one peer address.
type peer struct {
	addr netip.AddrPort
	// name and identity are the trusted identity that signed its
	// messages (empty until one did).
	name     string
	identity [32]byte
	// eph is this side's X25519 key for the peer, the same in every
	// agreement with it (so that both directions derive one key);
	// peerEph the peer's.
	eph     *ecdh.PrivateKey
	peerEph [32]byte
	// provisioned is the interconnect agreement set for it ("" none), as
	// set.
	provisioned string
	set         slowpath.MSXAgreement
	// expiry fires when the shortest agreed duration runs out.
	expiry *slowpath.Timer
}

// contact is a mapping system this side orders from.
type contact struct {
	prefixes []Prefix
	// static: configured (cpnp.peers[].contact), else discovered.
	static bool
	// discovered prefixes, by source prefix (BGP discovery).
	learned map[netip.Prefix]struct{}
}

type answerKey struct {
	src   netip.AddrPort
	nonce wire.Nonce
}

// reqTag is the Value of a tracked request.
type reqTag struct {
	peer, customerID string
	t                Type
}

// Role is CPNP assembled on the control plane's core: it sends and
// answers CPNP messages, keeps the agreements (Negotiator) and provisions
// the interconnect from the agreed ones.
type Role struct {
	c     *slowpath.Core
	log   *slog.Logger
	cfg   *slowpath.CPNPConfig
	priv  ed25519.PrivateKey
	pub   [32]byte
	trust map[[32]byte]*slowpath.CPNPPeer
	offer map[string]bool // offer.peers (nil: every trusted peer)
	neg   *Negotiator
	tr    *request.Tracker
	prov  Provisioner

	peers    map[netip.AddrPort]*peer
	contacts map[netip.AddrPort]*contact
	answers  map[answerKey][]byte
	ansQ     []answerKey
	// offered are the offers of ours waiting for an answer at the last
	// retry tick.
	offered map[[2]string]bool
	stats   WireStats
	in      Message
	buf     []byte
}

// NewRole builds the role of cfg (defaults applied, validated) on c,
// provisioning prov, and registers its handler.
func NewRole(c *slowpath.Core, cfg *slowpath.CPNPConfig, prov Provisioner) (*Role, error) {
	priv, err := cfg.Key()
	if err != nil {
		return nil, fmt.Errorf("cpnp.%w", err)
	}
	r := &Role{c: c, log: c.Log().With("role", "cpnp"), cfg: cfg, priv: priv, pub: [32]byte(priv.Public().(ed25519.PublicKey)),
		trust: map[[32]byte]*slowpath.CPNPPeer{}, prov: prov, peers: map[netip.AddrPort]*peer{},
		contacts: map[netip.AddrPort]*contact{}, answers: map[answerKey][]byte{}}
	for i := range cfg.Peers {
		k, err := cfg.Peers[i].PublicKeyBytes()
		if err != nil {
			return nil, fmt.Errorf("cpnp.peers[%d].public_key: %w", i, err)
		}
		r.trust[k] = &cfg.Peers[i]
		if p := &cfg.Peers[i]; p.Contact.IsValid() && !cfg.Order.Disabled {
			ps := toPrefixes(p.Prefixes)
			if len(ps) == 0 {
				ps = toPrefixes(cfg.Order.Prefixes)
			}
			r.contacts[unmap(p.Contact)] = &contact{prefixes: ps, static: true}
		}
	}
	if len(cfg.Offer.Peers) > 0 {
		r.offer = map[string]bool{}
		for _, n := range cfg.Offer.Peers {
			r.offer[n] = true
		}
	}
	var boot [4]byte
	rand.Read(boot[:])
	r.neg = New(cfg.Identity+"-"+hex.EncodeToString(boot[:]), r.policy)
	r.neg.seq = binary.BigEndian.Uint32(boot[:]) >> 1
	r.neg.next = uint64(r.neg.seq)
	r.neg.Log = func(msg string, args ...any) { r.log.Warn(msg, args...) }
	r.tr = request.New(c.Clock(), c, request.Config{Interval: cfg.RetransmitInterval, MaxTries: cfg.MaxTries,
		MaxInterval: 8 * cfg.RetransmitInterval})
	c.Handle(slowpath.SharedRoute(SubType), r.onMessage)
	c.OnStart(r.start)
	return r, nil
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func toPrefixes(ps []slowpath.EIDPrefix) []Prefix {
	out := make([]Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, Prefix{IID: p.IID, Prefix: p.Prefix.Masked()})
	}
	return out
}

// start orders from the configured contacts and starts the periodic
// retry.
func (r *Role) start() {
	r.reconcile()
	var tick func(time.Time)
	tick = func(now time.Time) {
		r.c.Schedule(now.Add(r.cfg.RetryInterval), tick)
		r.forgetEnded()
		r.reconcile()
	}
	r.c.Schedule(r.c.Now().Add(r.cfg.RetryInterval), tick)
	r.c.Flush()
}

// forgetEnded forgets the agreements that ended (kept until then so that
// listings show how they ended, and so that a declined order is not placed
// again before the retry), and abandons offers of ours that were already
// waiting for their answer at the previous tick (the customer's accept or
// decline was lost, or the customer went away).
func (r *Role) forgetEnded() {
	waiting := map[[2]string]bool{}
	for _, a := range r.neg.Agreements() {
		switch a.State {
		case Declined, Cancelled, Failed, Withdrawn:
			r.neg.Forget(a.Peer, a.CustomerID)
		case OfferSent:
			k := [2]string{a.Peer, a.CustomerID}
			if r.offered[k] {
				r.neg.Abandon(a.Peer, a.CustomerID)
				r.log.Info("CPNP offer unanswered: abandoned", "peer", a.Peer, "customer_id", a.CustomerID)
				continue
			}
			waiting[k] = true
		}
	}
	r.offered = waiting
}

// PublicKey returns this side's identity key in base64 (what peers put on
// their trust lists).
func (r *Role) PublicKey() string { return base64.StdEncoding.EncodeToString(r.pub[:]) }

// frame encodes m in a type-15 frame with nonce n, identity and signature.
func (r *Role) frame(n wire.Nonce, m *Message) ([]byte, error) {
	m.Identity = r.pub
	b := append(r.buf[:0], byte(wire.TypeSharedExtension)<<4|byte(SubType>>8), byte(SubType&0xff), 0, 0)
	b = append(b, n[:]...)
	b, err := m.Append(b)
	if err != nil {
		return nil, err
	}
	if len(b) == frameHdrLen {
		return nil, fmt.Errorf("cpnp: empty message")
	}
	b = append(b, ed25519.Sign(r.priv, b)...)
	r.buf = b
	return b, nil
}

// ParseFrame decodes a CPNP frame (type 15, sub-type SubType) into m and
// returns its nonce, the signed bytes and the signature; it checks neither
// the signature nor the identity.
func ParseFrame(b []byte, m *Message) (n wire.Nonce, signed, sig []byte, err error) {
	st, err := wire.PeekSharedSubType(b)
	if err != nil {
		return n, nil, nil, err
	}
	if st != SubType {
		return n, nil, nil, fmt.Errorf("cpnp: sub-type %d, want %d", st, SubType)
	}
	if len(b) < frameHdrLen+hdrLen+sigLen {
		return n, nil, nil, ErrTruncated
	}
	n = wire.Nonce(b[4:12])
	l := int(binary.BigEndian.Uint16(b[frameHdrLen+2:]))
	if frameHdrLen+l+sigLen != len(b) {
		return n, nil, nil, fmt.Errorf("%w: message of %d bytes in a frame of %d", ErrTruncated, l, len(b))
	}
	if err := m.Parse(b[frameHdrLen : frameHdrLen+l]); err != nil {
		return n, nil, nil, err
	}
	return n, b[:frameHdrLen+l], b[frameHdrLen+l:], nil
}

// request sends m to dst as a tracked request.
func (r *Role) request(dst netip.AddrPort, m *Message) {
	n := r.tr.NewNonce()
	b, err := r.frame(n, m)
	if err != nil {
		r.log.Error("CPNP message not encoded", "type", m.Type.String(), "err", err)
		return
	}
	spec := request.Spec{Type: wire.TypeSharedExtension, Targets: []netip.AddrPort{dst},
		Value: reqTag{peer: dst.String(), customerID: m.CustomerID, t: m.Type}, Done: r.done}
	if _, err := r.tr.Start(&spec, n, b); err != nil {
		r.log.Error("CPNP request not started", "type", m.Type.String(), "err", err)
		return
	}
	r.stats.Sent++
}

// answer sends m to dst under nonce n and keeps it for a retransmitted
// request.
func (r *Role) answer(dst netip.AddrPort, n wire.Nonce, m *Message) {
	b, err := r.frame(n, m)
	if err != nil {
		r.log.Error("CPNP answer not encoded", "type", m.Type.String(), "err", err)
		return
	}
	k := answerKey{dst, n}
	if _, ok := r.answers[k]; !ok {
		if len(r.ansQ) >= maxAnswers {
			delete(r.answers, r.ansQ[0])
			r.ansQ = r.ansQ[1:]
		}
		r.ansQ = append(r.ansQ, k)
	}
	r.answers[k] = slices.Clone(b)
	r.send(dst, b)
}

func (r *Role) send(dst netip.AddrPort, b []byte) {
	if err := r.c.Send(dst, b, wire.TypeSharedExtension); err != nil {
		r.c.Msg(wire.TypeSharedExtension).SendErrors++
		return
	}
	r.stats.Sent++
}

// done follows a tracked request's end: an order that went unanswered is
// abandoned (ordered again at the next retry).
func (r *Role) done(q *request.Request, o request.Outcome) {
	if o != request.GaveUp {
		return
	}
	r.stats.GaveUp++
	t := q.Value().(reqTag)
	r.log.Warn("CPNP request unanswered", "peer", t.peer, "type", t.t.String(), "customer_id", t.customerID)
	r.neg.Abandon(t.peer, t.customerID)
}

// refuse counts and logs a refused message.
func (r *Role) refuse(counter *uint64, what string, src netip.AddrPort, err error) {
	*counter++
	r.c.Msg(wire.TypeSharedExtension).Rejected++
	r.log.Warn("CPNP message ignored: "+what, "src", src, "err", err)
}

// onMessage takes a CPNP frame from the control port.
func (r *Role) onMessage(msg *slowpath.Msg) bool {
	m := &r.in
	src := unmap(msg.Src)
	r.stats.Received++
	n, signed, sig, err := ParseFrame(msg.Raw, m)
	if err != nil {
		r.c.Msg(wire.TypeSharedExtension).BadParse++
		r.refuse(&r.stats.Malformed, "malformed", src, err)
		return true
	}
	tp := r.trust[m.Identity]
	if tp == nil {
		r.refuse(&r.stats.Untrusted, "signed by a key not on the trust list", src,
			fmt.Errorf("identity %s", base64.StdEncoding.EncodeToString(m.Identity[:])))
		return true
	}
	if !ed25519.Verify(m.Identity[:], signed, sig) {
		r.refuse(&r.stats.BadSignature, "bad signature", src, fmt.Errorf("claims to be %s", tp.Name))
		return true
	}
	if b, ok := r.answers[answerKey{src, n}]; ok {
		r.stats.AnswersResent++
		r.send(src, b)
		return true
	}
	p := r.peerAt(src)
	if p == nil {
		r.refuse(&r.stats.PeersFull, "too many peers", src, nil)
		return true
	}
	if p.name != "" && p.identity != m.Identity {
		r.refuse(&r.stats.IdentityChanged, "address bound to another identity", src, fmt.Errorf("%s, was %s", tp.Name, p.name))
		return true
	}
	p.name, p.identity = tp.Name, m.Identity
	if m.Ephemeral != ([32]byte{}) && m.Ephemeral != p.peerEph {
		p.peerEph = m.Ephemeral
	}
	key := src.String()
	switch m.Type {
	case Offer, Decline, Processing, Fail, Ack:
		if q, st := r.tr.Match(src, n); st == request.Matched {
			key = q.Value().(reqTag).peer
			r.tr.Complete(q)
		}
	}
	out := r.neg.Handle(key, m)
	for i := range out {
		if out[i].Type == Offer {
			out[i].Ephemeral = [32]byte(p.eph.PublicKey().Bytes())
		}
		r.answer(src, n, &out[i])
	}
	r.after(p, key, m.CustomerID)
	r.c.Flush()
	return true
}

// peerAt returns the state kept for addr, made when new (nil when
// MaxContacts peers are kept already).
func (r *Role) peerAt(addr netip.AddrPort) *peer {
	if p := r.peers[addr]; p != nil {
		return p
	}
	if len(r.peers) >= r.cfg.MaxContacts {
		return nil
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	p := &peer{addr: addr, eph: k}
	r.peers[addr] = p
	return p
}

// after acts on the state the agreement reached: the customer accepts or
// declines an offer; an agreement agreed, withdrawn or ended
// (re)provisions the peer's interconnect.
func (r *Role) after(p *peer, key, customerID string) {
	a, ok := r.neg.Get(key, customerID)
	if !ok {
		return
	}
	switch a.State {
	case OfferReceived:
		c := r.contacts[p.addr]
		full := sameTerms(&a.Offered, &a.Asked)
		if c == nil || (!full && r.cfg.Order.DeclinePartial) {
			m, err := r.neg.Decline(key, customerID)
			if err == nil {
				r.stats.DeclinedOffers++
				r.log.Info("CPNP offer declined", "peer", p.name, "customer_id", customerID, "wanted", c != nil, "full", full)
				r.sendUntracked(p.addr, &m)
			}
			break
		}
		if m, err := r.neg.Accept(key, customerID); err == nil {
			r.request(p.addr, &m)
		}
	case Agreed:
		r.provision(p)
	case Withdrawn, Declined, Cancelled, Failed:
		r.log.Info("CPNP agreement ended", "peer", p.name, "customer_id", customerID, "state", a.State.String(), "reason", a.Reason)
		r.provision(p)
	}
	if a.Customer {
		r.reconcile() // the contact's wishes may have changed meanwhile
	}
}

func (r *Role) sendUntracked(dst netip.AddrPort, m *Message) {
	b, err := r.frame(r.tr.NewNonce(), m)
	if err == nil {
		r.send(dst, b)
	}
}

// sameTerms reports whether an offer grants all that was asked.
func sameTerms(offered, asked *Terms) bool {
	if offered.Primitives != asked.Primitives {
		return false
	}
	for _, q := range asked.Prefixes {
		if !slices.Contains(offered.Prefixes, q) {
			return false
		}
	}
	return true
}

// policy is the provider's Policy: the part of the order that the offer
// section grants to a trusted peer it names.
func (r *Role) policy(peerKey string, asked Terms) (Terms, bool) {
	ap, err := netip.ParseAddrPort(peerKey)
	if err != nil {
		return Terms{}, false
	}
	p := r.peers[ap]
	if p == nil || p.name == "" || (r.offer != nil && !r.offer[p.name]) || p.peerEph == ([32]byte{}) {
		return Terms{}, false
	}
	o := &r.cfg.Offer
	var t Terms
	t.Primitives = asked.Primitives & primitivesOf(o.Primitives)
	if t.Primitives == 0 && asked.Primitives != 0 {
		return Terms{}, false
	}
	for _, q := range asked.Prefixes {
		for _, g := range o.Prefixes {
			gp := Prefix{IID: g.IID, Prefix: g.Prefix.Masked()}
			switch {
			case q.IID != gp.IID:
			case gp.Prefix.Bits() <= q.Prefix.Bits() && gp.Prefix.Contains(q.Prefix.Addr()):
				t.Prefixes = append(t.Prefixes, q)
			case q.Prefix.Bits() < gp.Prefix.Bits() && q.Prefix.Contains(gp.Prefix.Addr()):
				t.Prefixes = append(t.Prefixes, gp)
			}
		}
	}
	t.Rate = o.Rate
	if asked.Rate != 0 {
		t.Rate = min(asked.Rate, o.Rate)
	}
	t.Duration = asked.Duration
	if o.MaxDuration > 0 && (t.Duration == 0 || t.Duration > o.MaxDuration) {
		t.Duration = o.MaxDuration
	}
	return t, len(t.Prefixes) > 0
}

// primitivesOf maps configured primitive names to their bits.
func primitivesOf(names []string) Primitives {
	var p Primitives
	for _, n := range names {
		switch n {
		case slowpath.MSXSubscribe:
			p |= PrimSubscribe
		case slowpath.MSXBulk:
			p |= PrimBulk
		case slowpath.MSXInvocation:
			p |= PrimDirect
		}
	}
	return p
}

// primitiveNames maps bits to configured primitive names.
func primitiveNames(p Primitives) []string {
	var out []string
	for _, x := range []struct {
		b Primitives
		n string
	}{{PrimSubscribe, slowpath.MSXSubscribe}, {PrimBulk, slowpath.MSXBulk}, {PrimDirect, slowpath.MSXInvocation}} {
		if p&x.b != 0 {
			out = append(out, x.n)
		}
	}
	return out
}

// agreementKey derives the interconnect key both sides of p compute
// without sending it: HKDF-SHA256 of the X25519 secret of the two
// ephemeral keys, bound to both identities (docs/cpnp.md).
func (r *Role) agreementKey(p *peer) ([]byte, error) {
	pk, err := ecdh.X25519().NewPublicKey(p.peerEph[:])
	if err != nil {
		return nil, err
	}
	secret, err := p.eph.ECDH(pk)
	if err != nil {
		return nil, err
	}
	a, b := r.pub, p.identity
	if string(a[:]) > string(b[:]) {
		a, b = b, a
	}
	info := "rloc cpnp msx key v1" + string(a[:]) + string(b[:])
	return hkdf.Key(sha256.New, secret, nil, info, 32)
}

// MSXName is the name of the interconnect agreement provisioned for the
// trusted peer name.
func MSXName(name string) string { return "cpnp-" + name }

// nothing is a scope that holds no EID (the peer gets nothing of ours
// when only our order is agreed).
var nothing = []slowpath.EIDPrefix{{IID: wire.MaxInstanceID, Prefix: netip.MustParsePrefix("0.0.0.0/32")}}

// provision sets p's interconnect agreement from its agreed agreements
// (both directions merge into one: one key, one peer address), or removes
// it when none is left.
func (r *Role) provision(p *peer) {
	key := p.addr.String()
	var cust, prov *Terms
	var shortest time.Duration
	for _, a := range r.neg.Agreements() {
		if a.Peer != key || !(a.State == Agreed || a.Updating) {
			continue
		}
		t := a.Agreed
		if a.Customer {
			cust = &t
		} else {
			prov = &t
		}
		if t.Duration > 0 && (shortest == 0 || t.Duration < shortest) {
			shortest = t.Duration
		}
	}
	if cust == nil && prov == nil {
		if p.provisioned != "" && r.prov.RemoveAgreement(p.provisioned) {
			r.stats.Deprovisioned++
			r.log.Info("interconnect de-provisioned", "peer", p.name, "agreement", p.provisioned)
		}
		p.provisioned = ""
		if p.expiry != nil {
			p.expiry.Stop()
		}
		return
	}
	k, err := r.agreementKey(p)
	if err != nil {
		r.stats.ProvisionErrors++
		r.log.Error("interconnect key not derived", "peer", p.name, "err", err)
		return
	}
	ag := slowpath.MSXAgreement{Name: MSXName(p.name), Peers: []netip.AddrPort{p.addr}, Mode: slowpath.MSXModeNone,
		Key: slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: hex.EncodeToString(k)}, Filters: nothing}
	var prims Primitives
	if cust != nil {
		ag.Mode = r.cfg.Order.Mode
		for _, x := range cust.Prefixes {
			ag.PeerPrefixes = append(ag.PeerPrefixes, slowpath.EIDPrefix{IID: x.IID, Prefix: x.Prefix})
		}
		prims |= cust.Primitives
		ag.Rate = float64(cust.Rate)
	}
	if prov != nil {
		ag.Filters = nil
		for _, x := range prov.Prefixes {
			ag.Filters = append(ag.Filters, slowpath.EIDPrefix{IID: x.IID, Prefix: x.Prefix})
		}
		prims |= prov.Primitives
		ag.Rate = float64(prov.Rate)
	}
	ag.Allow = primitiveNames(prims)
	if len(ag.Allow) == 0 {
		ag.Allow = []string{slowpath.MSXInvocation}
	}
	if p.provisioned == ag.Name && reflect.DeepEqual(p.set, ag) {
		return // unchanged: the copy goes on
	}
	if p.provisioned != "" && p.provisioned != ag.Name {
		r.prov.RemoveAgreement(p.provisioned)
	}
	if err := r.prov.SetAgreement(ag); err != nil {
		r.stats.ProvisionErrors++
		r.log.Error("interconnect not provisioned", "peer", p.name, "err", err)
		return
	}
	p.provisioned, p.set = ag.Name, ag
	r.stats.Provisioned++
	r.log.Info("interconnect provisioned", "peer", p.name, "agreement", ag.Name, "mode", ag.Mode,
		"peer_prefixes", ag.PeerPrefixes, "shared", ag.Filters, "allow", ag.Allow)
	if shortest > 0 {
		at := r.c.Now().Add(shortest)
		if p.expiry == nil {
			p.expiry = r.c.Schedule(at, func(time.Time) { r.expire(p) })
		} else {
			p.expiry.Reset(at)
		}
	}
}

// expire withdraws p's agreements whose duration ran out (the customer
// orders again at the next retry when it still wants them).
func (r *Role) expire(p *peer) {
	key := p.addr.String()
	for _, a := range r.neg.Agreements() {
		if a.Peer != key || a.State != Agreed || a.Agreed.Duration == 0 {
			continue
		}
		if m, err := r.neg.WithdrawAgreement(key, a.CustomerID); err == nil {
			m.Reason = ReasonExpired
			r.request(p.addr, &m)
		}
	}
	r.provision(p)
}

// reconcile orders from every wanted contact without an order (an ended
// one counts until forgetEnded), updates an agreed order whose prefixes
// changed and withdraws those no longer wanted.
func (r *Role) reconcile() {
	live := map[string]Agreement{}
	for _, a := range r.neg.Agreements() {
		if a.Customer {
			live[a.Peer] = a
		}
	}
	for addr, c := range r.contacts {
		key := addr.String()
		a, ok := live[key]
		switch {
		case !ok && len(c.prefixes) > 0:
			r.order(addr, c)
		case ok && a.State == Agreed && !slices.Equal(a.Asked.Prefixes, c.prefixes) && len(c.prefixes) > 0:
			if m, err := r.neg.UpdateTerms(key, a.CustomerID, r.terms(c)); err == nil {
				r.request(addr, &m)
			}
		}
	}
	for key, a := range live {
		ap, _ := netip.ParseAddrPort(key)
		if c := r.contacts[ap]; (c == nil || len(c.prefixes) == 0) && a.State == Agreed {
			if m, err := r.neg.WithdrawAgreement(key, a.CustomerID); err == nil {
				r.request(ap, &m)
				if p := r.peers[ap]; p != nil {
					r.provision(p)
				}
			}
		}
	}
}

func (r *Role) terms(c *contact) Terms {
	o := &r.cfg.Order
	return Terms{Prefixes: slices.Clone(c.prefixes), Primitives: primitivesOf(o.Primitives), Rate: o.Rate, Duration: o.Duration}
}

// order sends a quotation to addr.
func (r *Role) order(addr netip.AddrPort, c *contact) {
	p := r.peerAt(addr)
	if p == nil {
		r.stats.PeersFull++
		return
	}
	m, err := r.neg.Order(addr.String(), r.terms(c))
	if err != nil {
		r.log.Warn("CPNP order not placed", "contact", addr, "err", err)
		return
	}
	m.Ephemeral = [32]byte(p.eph.PublicKey().Bytes())
	r.stats.Orders++
	r.log.Info("CPNP quotation sent", "contact", addr, "customer_id", m.CustomerID, "prefixes", len(m.Prefixes))
	r.request(addr, &m)
}

// Learned tells the role that BGP discovery learned prefix, serviced by
// the mapping system at contact (event loop only): the customer orders
// from it (Order.Prefixes, or the prefixes learned for it).
func (r *Role) Learned(prefix netip.Prefix, at netip.AddrPort) {
	if r.cfg.Order.Disabled || !at.IsValid() {
		return
	}
	at = unmap(at)
	c := r.contacts[at]
	if c == nil {
		if len(r.contacts) >= r.cfg.MaxContacts {
			r.stats.PeersFull++
			return
		}
		c = &contact{}
		r.contacts[at] = c
	}
	if c.static {
		return
	}
	if c.learned == nil {
		c.learned = map[netip.Prefix]struct{}{}
	}
	c.learned[prefix.Masked()] = struct{}{}
	r.setLearned(c)
	r.reconcile()
	r.c.Flush()
}

// Unlearned tells the role that prefix is no longer advertised by the
// mapping system at contact (event loop only): when none is left, its
// agreement is withdrawn and it is no longer contacted.
func (r *Role) Unlearned(prefix netip.Prefix, at netip.AddrPort) {
	at = unmap(at)
	c := r.contacts[at]
	if c == nil || c.static {
		return
	}
	delete(c.learned, prefix.Masked())
	r.setLearned(c)
	if len(c.learned) == 0 {
		delete(r.contacts, at)
	}
	r.reconcile()
	r.c.Flush()
}

func (r *Role) setLearned(c *contact) {
	if len(c.learned) == 0 {
		c.prefixes = nil
		return
	}
	if len(r.cfg.Order.Prefixes) > 0 {
		c.prefixes = toPrefixes(r.cfg.Order.Prefixes)
		return
	}
	c.prefixes = c.prefixes[:0]
	for p := range c.learned {
		c.prefixes = append(c.prefixes, Prefix{Prefix: p})
	}
	slices.SortFunc(c.prefixes, func(a, b Prefix) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
}

// Withdraw ends the agreed agreement customerID with the peer at peerAddr
// (operator's decision, from either side); event loop only.
func (r *Role) Withdraw(peerAddr, customerID string) error {
	ap, err := netip.ParseAddrPort(peerAddr)
	if err != nil {
		return err
	}
	m, err := r.neg.WithdrawAgreement(ap.String(), customerID)
	if err != nil {
		return err
	}
	r.request(ap, &m)
	if p := r.peers[ap]; p != nil {
		r.provision(p)
	}
	r.c.Flush()
	return nil
}

// AgreementInfo is one agreement as the role lists it.
type AgreementInfo struct {
	Peer       string   `json:"peer"`
	PeerName   string   `json:"peer_name,omitempty"`
	Role       string   `json:"role"`
	CustomerID string   `json:"customer_id"`
	ProviderID string   `json:"provider_id,omitempty"`
	State      string   `json:"state"`
	Updating   bool     `json:"updating,omitempty"`
	Prefixes   []string `json:"prefixes"`
	Primitives []string `json:"primitives"`
	Rate       uint32   `json:"rate,omitempty"`
	Duration   string   `json:"duration,omitempty"`
	// Interconnect is the msx agreement it provisioned ("" none).
	Interconnect string `json:"interconnect,omitempty"`
}

// ContactInfo is a mapping system the customer orders from.
type ContactInfo struct {
	Contact  string   `json:"contact"`
	Source   string   `json:"source"`
	Prefixes []string `json:"prefixes"`
}

// Listing is the role's state (GET /v1/cpnp).
type Listing struct {
	Identity   string          `json:"identity"`
	PublicKey  string          `json:"public_key"`
	Agreements []AgreementInfo `json:"agreements"`
	Contacts   []ContactInfo   `json:"contacts"`
	Stats      WireStats       `json:"stats"`
	Negotiator Stats           `json:"negotiator"`
	Requests   request.Stats   `json:"requests"`
}

// Listing returns the role's state (event loop only).
func (r *Role) Listing() Listing {
	l := Listing{Identity: r.cfg.Identity, PublicKey: r.PublicKey(), Agreements: []AgreementInfo{}, Contacts: []ContactInfo{},
		Stats: r.stats, Negotiator: r.neg.Stats(), Requests: r.tr.Stats()}
	for _, a := range r.neg.Agreements() {
		t := a.Agreed
		if a.State != Agreed && !a.Updating {
			t = a.Asked
			if a.State == OfferReceived || a.State == AcceptSent || a.State == OfferSent {
				t = a.Offered
			}
		}
		info := AgreementInfo{Peer: a.Peer, Role: "provider", CustomerID: a.CustomerID, ProviderID: a.ProviderID,
			State: a.State.String(), Updating: a.Updating, Prefixes: prefixStrings(t.Prefixes),
			Primitives: primitiveNames(t.Primitives), Rate: t.Rate}
		if a.Customer {
			info.Role = "customer"
		}
		if t.Duration > 0 {
			info.Duration = t.Duration.String()
		}
		if ap, err := netip.ParseAddrPort(a.Peer); err == nil {
			if p := r.peers[ap]; p != nil {
				info.PeerName = p.name
				if a.State == Agreed {
					info.Interconnect = p.provisioned
				}
			}
		}
		l.Agreements = append(l.Agreements, info)
	}
	for addr, c := range r.contacts {
		src := "bgp"
		if c.static {
			src = "config"
		}
		l.Contacts = append(l.Contacts, ContactInfo{Contact: addr.String(), Source: src, Prefixes: prefixStrings(c.prefixes)})
	}
	slices.SortFunc(l.Contacts, func(a, b ContactInfo) int { return strings.Compare(a.Contact, b.Contact) })
	return l
}

func prefixStrings(ps []Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, fmt.Sprintf("[%d]%v", p.IID, p.Prefix))
	}
	return out
}
