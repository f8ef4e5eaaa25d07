package control

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/cpnp"
	"github.com/rloc-router/rloc/wire"
)

// cpnpKey returns the identity key of the mapping system name (a seed
// from its name: tests only).
func cpnpKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("cpnp test " + name))
	return ed25519.NewKeyFromSeed(s[:])
}

func cpnpPub(name string) string {
	return base64.StdEncoding.EncodeToString(cpnpKey(name).Public().(ed25519.PublicKey))
}

// cpnpConfig is the negotiation of mapping system name trusting peers.
func cpnpConfig(name string, peers ...string) *slowpath.CPNPConfig {
	c := &slowpath.CPNPConfig{Identity: name, PrivateKey: base64.StdEncoding.EncodeToString(cpnpKey(name).Seed())}
	for _, p := range peers {
		c.Peers = append(c.Peers, slowpath.CPNPPeer{Name: p, PublicKey: cpnpPub(p)})
	}
	return c
}

var (
	cpnpD2Space = slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.0.0.0/8")}
	cpnpD1Space = slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("172.16.0.0/12")}
)

// cpnpProvider starts domain 2's Map-Server with n registrations of
// 10.0.0.0/10, offering offer to d1 (provider only).
func cpnpProvider(t *testing.T, clk *fakeClock, n int, mod func(*slowpath.CPNPConfig)) *Engine {
	t.Helper()
	c := msConfig(siteConfig("s2", "10.0.0.0/8", true))
	c.RateLimit = RateLimitConfig{Off: true}
	c.MapServer.RegistrationTimeout = 24 * time.Hour
	c.Logger = testLogger(t).With("domain", "d2")
	cc := cpnpConfig("d2", "d1")
	cc.Offer.Prefixes = []slowpath.EIDPrefix{cpnpD2Space}
	cc.Order.Disabled = true
	if mod != nil {
		mod(cc)
	}
	c.CPNP = cc
	p := newEngineWith(t, c, nil, slowpathOptions(clk))
	msxRegister(t, p, 0, n, 1440, 1)
	return p
}

// cpnpCustomer starts domain 1's Map-Resolver ordering 10.0.0.0/8 from
// contact (when valid).
func cpnpCustomer(t *testing.T, clk *fakeClock, contact netip.AddrPort, mod func(*slowpath.CPNPConfig)) *Engine {
	t.Helper()
	c := Config{MapResolver: &MapResolverConfig{}, RateLimit: RateLimitConfig{Off: true}}
	c.Logger = testLogger(t).With("domain", "d1")
	cc := cpnpConfig("d1", "d2")
	cc.Peers[0].Contact = contact
	cc.Order.Prefixes = []slowpath.EIDPrefix{cpnpD2Space}
	if mod != nil {
		mod(cc)
	}
	c.CPNP = cc
	return newEngineWith(t, c, nil, slowpathOptions(clk))
}

func cpnpState(t *testing.T, e *Engine) cpnp.Listing {
	t.Helper()
	l, ok := e.CPNP()
	if !ok {
		t.Fatal("no cpnp")
	}
	return l
}

// cpnpAgreed waits until e holds one agreed agreement and returns it.
func cpnpAgreed(t *testing.T, e *Engine, role string) cpnp.AgreementInfo {
	t.Helper()
	var a cpnp.AgreementInfo
	waitFor(t, 10*time.Second, role+" agreement agreed", func() bool {
		for _, x := range cpnpState(t, e).Agreements {
			if x.Role == role && x.State == "agreed" && x.Interconnect != "" {
				a = x
				return true
			}
		}
		return false
	})
	return a
}

func msxNames(t *testing.T, e *Engine) []string {
	ags, _ := e.MSXAgreements()
	var out []string
	for _, a := range ags {
		out = append(out, a.Name)
	}
	return out
}

// TestCPNPNegotiateFull: over real UDP, d1 orders 10.0.0.0/8 from d2, d2
// offers all of it, d1 accepts, both provision the interconnect with the
// key each derived (never sent): d1's copy of d2's table completes and
// d1 answers for d2's EIDs. The withdrawal by d1 de-provisions both sides.
func TestCPNPNegotiateFull(t *testing.T) {
	clk := newFakeClock()
	p := cpnpProvider(t, clk, 50, nil)
	r := cpnpCustomer(t, clk, p.Addr(), nil)

	ca := cpnpAgreed(t, r, "customer")
	pa := cpnpAgreed(t, p, "provider")
	if ca.CustomerID != pa.CustomerID || ca.ProviderID != pa.ProviderID || ca.PeerName != "d2" || pa.PeerName != "d1" ||
		!slices.Equal(ca.Prefixes, []string{"[0]10.0.0.0/8"}) || ca.Interconnect != "cpnp-d2" || pa.Interconnect != "cpnp-d1" {
		t.Fatalf("customer %+v\nprovider %+v", ca, pa)
	}
	waitFor(t, 10*time.Second, "complete copy", func() bool { return msxAgreement(t, r).Complete })
	if n := msxSame(t, p, r, "cpnp-d2"); n != 50 {
		t.Fatalf("copy of %d", n)
	}
	got := msxAsk(t, r, "10.0.0.5")
	if got == nil || got.TTL != 1440 || rlocOf(got) != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("answer %+v", got)
	}
	ag := msxAgreement(t, p)
	if ag.Name != "cpnp-d1" || ag.Mode != slowpath.MSXModeNone || len(ag.Filters) != 1 || ag.Filters[0] != cpnpD2Space {
		t.Fatalf("provider's interconnect %+v", ag)
	}
	if ag.Stats.Unauthenticated != 0 || msxAgreement(t, r).Stats.ReplyBadAuth != 0 {
		t.Fatalf("the derived keys differ: %+v / %+v", ag.Stats, msxAgreement(t, r).Stats)
	}
	st := cpnpState(t, r).Stats
	if st.Orders != 1 || st.Provisioned != 1 || st.Malformed+st.BadSignature+st.Untrusted != 0 {
		t.Fatalf("customer counters %+v", st)
	}

	if err := r.CPNPWithdraw(p.Addr().String(), ca.CustomerID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both de-provisioned", func() bool {
		return len(msxNames(t, r)) == 0 && len(msxNames(t, p)) == 0
	})
	waitFor(t, 10*time.Second, "withdrawal acknowledged", func() bool { return cpnpState(t, r).Requests.Answered == 3 })
	if s := cpnpState(t, p).Stats; s.Deprovisioned != 1 {
		t.Fatalf("provider counters %+v", s)
	}
}

// TestCPNPPartial: d2 shares only 10.0.0.0/9 of the /8 asked; d1 accepts
// the part (and its copy holds only it), or with decline_partial
// declines it and nothing is provisioned on either side.
func TestCPNPPartial(t *testing.T) {
	half := func(c *slowpath.CPNPConfig) {
		c.Offer.Prefixes = []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/9")}}
	}
	t.Run("accepted", func(t *testing.T) {
		clk := newFakeClock()
		p := cpnpProvider(t, clk, 10, half)
		r := cpnpCustomer(t, clk, p.Addr(), nil)
		ca := cpnpAgreed(t, r, "customer")
		if !slices.Equal(ca.Prefixes, []string{"[0]10.0.0.0/9"}) {
			t.Fatalf("agreed %+v", ca)
		}
		ag := msxAgreement(t, r)
		if len(ag.PeerPrefixes) != 1 || ag.PeerPrefixes[0].Prefix.Bits() != 9 {
			t.Fatalf("interconnect %+v", ag)
		}
	})
	t.Run("declined", func(t *testing.T) {
		clk := newFakeClock()
		p := cpnpProvider(t, clk, 10, half)
		r := cpnpCustomer(t, clk, p.Addr(), func(c *slowpath.CPNPConfig) { c.Order.DeclinePartial = true })
		waitFor(t, 10*time.Second, "offer declined", func() bool { return cpnpState(t, r).Stats.DeclinedOffers == 1 })
		waitFor(t, 10*time.Second, "provider sees the decline", func() bool {
			l := cpnpState(t, p).Agreements
			return len(l) == 1 && l[0].State == "declined"
		})
		if l := cpnpState(t, r).Agreements; len(l) != 1 || l[0].State != "declined" || len(msxNames(t, r)) != 0 || len(msxNames(t, p)) != 0 {
			t.Fatalf("left: %+v %v %v", cpnpState(t, r).Agreements, msxNames(t, r), msxNames(t, p))
		}
	})
}

// TestCPNPDeclined: a provider whose policy shares none of what is asked
// (or does not offer to this peer) declines; the customer ends declined,
// forgets it, and orders again after retry_interval (fake clock).
func TestCPNPDeclined(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*slowpath.CPNPConfig)
	}{
		{"prefixes", func(c *slowpath.CPNPConfig) { c.Offer.Prefixes = []slowpath.EIDPrefix{cpnpD1Space} }},
		{"peer", func(c *slowpath.CPNPConfig) {
			c.Peers = append(c.Peers, slowpath.CPNPPeer{Name: "d3", PublicKey: cpnpPub("d3")})
			c.Offer.Peers = []string{"d3"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			p := cpnpProvider(t, clk, 1, tc.mod)
			r := cpnpCustomer(t, clk, p.Addr(), nil)
			waitFor(t, 10*time.Second, "declined", func() bool {
				l := cpnpState(t, r).Agreements
				return len(l) == 1 && l[0].State == "declined"
			})
			if len(msxNames(t, r))+len(msxNames(t, p)) != 0 {
				t.Fatal("provisioned after a decline")
			}
			clk.Add(31 * time.Second)
			r.Core().Tick()
			waitFor(t, 10*time.Second, "ordered again", func() bool { return cpnpState(t, r).Stats.Orders == 2 })
		})
	}
}

// TestCPNPRetransmit: the provider's first offer is lost; the customer's
// quotation goes again after retransmit_interval (fake clock) and the
// provider answers it from its cache of answers.
func TestCPNPRetransmit(t *testing.T) {
	clk := newFakeClock()
	p := cpnpProvider(t, clk, 1, nil)
	rl := newRelay(t, p.Addr(), func(n int64, b []byte) bool { return n == 1 })
	r := cpnpCustomer(t, clk, rl.addr(), nil)
	select {
	case <-rl.dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("no offer")
	}
	clk.Add(1100 * time.Millisecond)
	r.Core().Tick()
	cpnpAgreed(t, r, "customer")
	if s := cpnpState(t, p).Stats; s.AnswersResent != 1 {
		t.Fatalf("provider %+v", s)
	}
	if s := cpnpState(t, r).Requests; s.Retransmits != 1 {
		t.Fatalf("customer requests %+v", s)
	}
}

// TestCPNPDiscoveryDrives: prefixes learned from BGP discovery for a
// contact make the customer order them (no contact configured); a second
// prefix updates the agreement; when both are withdrawn the agreement is
// withdrawn, both sides de-provision, and the contact is no longer asked.
func TestCPNPDiscoveryDrives(t *testing.T) {
	clk := newFakeClock()
	p := cpnpProvider(t, clk, 10, func(c *slowpath.CPNPConfig) {
		c.Offer.Prefixes = []slowpath.EIDPrefix{cpnpD2Space, {Prefix: netip.MustParsePrefix("192.168.0.0/16")}}
	})
	r := cpnpCustomer(t, clk, netip.AddrPort{}, func(c *slowpath.CPNPConfig) { c.Order.Prefixes = nil })
	if l := cpnpState(t, r); len(l.Contacts) != 0 || l.Stats.Orders != 0 {
		t.Fatalf("ordered without discovery: %+v", l)
	}
	learn := func(pfx string, gone bool) {
		r.do(func() {
			if gone {
				r.cpnp.Unlearned(netip.MustParsePrefix(pfx), p.Addr())
			} else {
				r.cpnp.Learned(netip.MustParsePrefix(pfx), p.Addr())
			}
		})
	}
	learn("10.0.0.0/8", false)
	ca := cpnpAgreed(t, r, "customer")
	if !slices.Equal(ca.Prefixes, []string{"[0]10.0.0.0/8"}) {
		t.Fatalf("agreed %+v", ca)
	}
	learn("192.168.0.0/16", false)
	waitFor(t, 10*time.Second, "updated", func() bool {
		l := cpnpState(t, r).Agreements
		return len(l) == 1 && l[0].State == "agreed" && len(l[0].Prefixes) == 2
	})
	waitFor(t, 10*time.Second, "interconnect updated", func() bool {
		ags, _ := r.MSXAgreements()
		return len(ags) == 1 && len(ags[0].PeerPrefixes) == 2
	})
	learn("10.0.0.0/8", true)
	learn("192.168.0.0/16", true)
	waitFor(t, 10*time.Second, "withdrawn and de-provisioned", func() bool {
		return len(msxNames(t, r)) == 0 && len(msxNames(t, p)) == 0
	})
	// Nothing more goes to d2: no order, and the removed interconnect's
	// renewals and silence checks stop (three subscription lifetimes).
	waitFor(t, 10*time.Second, "withdrawal acknowledged", func() bool {
		q := cpnpState(t, r).Requests
		return q.Started == q.Answered+q.GaveUp+q.Cancelled
	})
	before := r.Stats().Msgs[wire.TypeSharedExtension].Sent
	for range 9 {
		clk.Add(20 * time.Second)
		r.Core().Tick()
	}
	if l := cpnpState(t, r); len(l.Contacts) != 0 || r.Stats().Msgs[wire.TypeSharedExtension].Sent != before {
		t.Fatalf("still contacted: %d type-15 messages sent, %+v", r.Stats().Msgs[wire.TypeSharedExtension].Sent-before, l)
	}
}

// TestCPNPExpiry: an agreement of a stated duration is withdrawn when it
// runs out (fake clock) and ordered again at the next retry.
func TestCPNPExpiry(t *testing.T) {
	clk := newFakeClock()
	p := cpnpProvider(t, clk, 1, func(c *slowpath.CPNPConfig) { c.Offer.MaxDuration = time.Minute })
	r := cpnpCustomer(t, clk, p.Addr(), func(c *slowpath.CPNPConfig) { c.RetryInterval = 10 * time.Minute })
	ca := cpnpAgreed(t, r, "customer")
	if ca.Duration != "1m0s" {
		t.Fatalf("agreed %+v", ca)
	}
	clk.Add(61 * time.Second)
	r.Core().Tick()
	waitFor(t, 10*time.Second, "expired", func() bool { return len(msxNames(t, r)) == 0 && len(msxNames(t, p)) == 0 })
}

// cpnpFrame encodes m as mapping system name signs it (a peer played by
// the test).
func cpnpFrame(t *testing.T, name string, n wire.Nonce, m cpnp.Message) []byte {
	t.Helper()
	k := cpnpKey(name)
	m.Identity = [32]byte(k.Public().(ed25519.PublicKey))
	b := []byte{byte(wire.TypeSharedExtension)<<4 | byte(cpnp.SubType>>8), byte(cpnp.SubType & 0xff), 0, 0}
	b = append(b, n[:]...)
	b, err := m.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, ed25519.Sign(k, b)...)
}

// TestCPNPBadInput: malformed frames, keys not on the trust list, bad
// signatures, unknown identifiers, messages out of sequence and offers
// for prefixes nobody asked for are ignored, logged and counted; nothing
// is provisioned.
func TestCPNPBadInput(t *testing.T) {
	clk := newFakeClock()
	// d1 orders from a contact nobody answers at: the test answers.
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	r := cpnpCustomer(t, clk, peer, nil)
	var q cpnp.Message
	var qn wire.Nonce
	waitFor(t, 5*time.Second, "quotation sent", func() bool { return cpnpState(t, r).Stats.Orders == 1 })
	// Read the quotation back from the agreement listing.
	l := cpnpState(t, r)
	if len(l.Agreements) != 1 {
		t.Fatalf("%+v", l)
	}
	q.CustomerID = l.Agreements[0].CustomerID
	ephem := [32]byte{9: 1}
	eph := func(m cpnp.Message) cpnp.Message { m.Ephemeral = ephem; return m }
	inject := func(b []byte) {
		t.Helper()
		if err := r.Core().Inject(peer, b); err != nil {
			t.Fatal(err)
		}
	}
	good := cpnpFrame(t, "d2", qn, eph(cpnp.Message{Type: cpnp.Offer, Seq: 1, CustomerID: "nobody-1", ProviderID: "d2-1"}))
	bad := slices.Clone(good)
	bad[len(bad)-1] ^= 1
	truncated := good[:len(good)-1]
	long := binary.BigEndian.AppendUint16(slices.Clone(good[:14]), 0xffff)
	inject(truncated)
	inject(long)
	inject(bad)
	inject(cpnpFrame(t, "mallory", qn, eph(cpnp.Message{Type: cpnp.Offer, Seq: 2, CustomerID: q.CustomerID, ProviderID: "m-1",
		Prefixes: []cpnp.Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}})))
	inject(good) // unknown customer ID
	inject(cpnpFrame(t, "d2", qn, cpnp.Message{Type: cpnp.Ack, Seq: 3, CustomerID: q.CustomerID}))
	inject(cpnpFrame(t, "d2", qn, eph(cpnp.Message{Type: cpnp.Offer, Seq: 4, CustomerID: q.CustomerID, ProviderID: "d2-1",
		Prefixes: []cpnp.Prefix{{Prefix: netip.MustParsePrefix("192.168.0.0/16")}}})))
	waitFor(t, 5*time.Second, "all counted", func() bool {
		l := cpnpState(t, r)
		return l.Stats.Malformed == 2 && l.Stats.BadSignature == 1 && l.Stats.Untrusted == 1 &&
			l.Negotiator.UnknownID == 1 && l.Negotiator.OutOfSequence == 1 && l.Negotiator.Unasked == 1
	})
	l = cpnpState(t, r)
	if len(msxNames(t, r)) != 0 || l.Agreements[0].State != "quotation-sent" || l.Stats.Provisioned != 0 {
		t.Fatalf("state after bad input %+v", l)
	}
	if s := r.Stats().Msgs[wire.TypeSharedExtension]; s.BadParse != 2 || s.Rejected < 4 {
		t.Fatalf("type-15 counters %+v", s)
	}
}

// TestCPNPConfigErrors: errors name the key.
func TestCPNPConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*slowpath.CPNPConfig)
		want string
	}{
		{func(c *slowpath.CPNPConfig) { c.Identity = "" }, "cpnp.identity"},
		{func(c *slowpath.CPNPConfig) { c.PrivateKey = "AAAA" }, "cpnp.private_key: 3 bytes"},
		{func(c *slowpath.CPNPConfig) { c.Peers[0].PublicKey = "x" }, "cpnp.peers[0].public_key"},
		{func(c *slowpath.CPNPConfig) { c.Offer.Peers = []string{"zz"} }, "cpnp.offer.peers[0]"},
		{func(c *slowpath.CPNPConfig) { c.Order.Mode = "both" }, "cpnp.order.mode"},
		{func(c *slowpath.CPNPConfig) { c.Order.Primitives = []string{"push"} }, "cpnp.order.primitives[0]"},
		{func(c *slowpath.CPNPConfig) { c.Offer.MaxDuration = time.Millisecond }, "cpnp.offer.max_duration"},
		{func(c *slowpath.CPNPConfig) { c.Peers = append(c.Peers, c.Peers[0]) }, "cpnp.peers[1].name"},
	} {
		c := cpnpConfig("d1", "d2")
		tc.mod(c)
		err := c.Validate("cpnp")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.want, err)
		}
	}
	c := Config{MapResolver: &MapResolverConfig{}, CPNP: cpnpConfig("d1", "d2"), Logger: slog.New(slog.DiscardHandler)}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestCPNPOfferAbandoned: an offer whose customer never answers (its
// accept lost, or it went away) is abandoned after two retry intervals
// and then forgotten: the provider's state stays bounded.
func TestCPNPOfferAbandoned(t *testing.T) {
	clk := newFakeClock()
	p := cpnpProvider(t, clk, 1, nil)
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	q := cpnp.Message{Type: cpnp.Quotation, Seq: 1, Transaction: 1, CustomerID: "d1-x-1", Ephemeral: [32]byte{9: 1},
		Prefixes: []cpnp.Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}, Primitives: cpnp.PrimBulk}
	if err := p.Core().Inject(peer, cpnpFrame(t, "d1", wire.Nonce{1}, q)); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		l := cpnpState(t, p).Agreements
		if len(l) == 0 {
			return ""
		}
		return l[0].State
	}
	waitFor(t, 5*time.Second, "offer sent", func() bool { return state() == "offer-sent" })
	for _, want := range []string{"offer-sent", "cancelled", ""} {
		clk.Add(31 * time.Second)
		p.Core().Tick()
		if got := state(); got != want {
			t.Fatalf("after a retry interval: %q, want %q", got, want)
		}
	}
	if len(msxNames(t, p)) != 0 {
		t.Fatal("provisioned without an accept")
	}
}
