package cpnp

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// State is where an agreement's negotiation is, on either side.
type State uint8

// States. The customer goes QuotationSent (→ Waiting, after a Processing)
// → OfferReceived →
// AcceptSent → Agreed; the provider OfferSent → Agreed. Declined,
// Cancelled, Failed and Withdrawn end a negotiation; an Agreed agreement
// under Update goes back through QuotationSent / OfferSent and keeps its
// agreed terms until the new ones are acknowledged.
const (
	QuotationSent State = iota + 1
	Waiting
	OfferReceived
	AcceptSent
	OfferSent
	Agreed
	Declined
	Cancelled
	Failed
	Withdrawn
)

// String names the state.
func (s State) String() string {
	names := [...]string{1: "quotation-sent", "waiting", "offer-received", "accept-sent", "offer-sent", "agreed",
		"declined", "cancelled", "failed", "withdrawn"}
	if int(s) < len(names) && names[s] != "" {
		return names[s]
	}
	return "state-" + strconv.Itoa(int(s))
}

// Terms are what an agreement grants (or an order asks for).
type Terms struct {
	Prefixes   []Prefix
	Primitives Primitives
	Rate       uint32
	Duration   time.Duration
	KeyRef     string
}

// Agreement is one negotiation and, once agreed, its terms.
type Agreement struct {
	// Peer is the other side (the caller's name for it: an address).
	Peer string
	// Customer is true on the customer's side.
	Customer bool
	// CustomerID and ProviderID are the two sides' identifiers.
	CustomerID, ProviderID string
	Transaction            uint32
	State                  State
	// Asked are the terms of the order in negotiation; Offered those of
	// the last offer; Agreed those in force (kept during an update).
	Asked, Offered, Agreed Terms
	// Reason is the reason code of the Decline, Fail or Withdraw that
	// ended it.
	Reason uint8
	// Updating is set while an agreed agreement renegotiates.
	Updating bool
}

// Policy decides what a provider offers for an order; it returns the terms
// offered (a part of what is asked, at most) or ok false to decline.
type Policy func(peer string, asked Terms) (offer Terms, ok bool)

// Stats count what the negotiator refused.
type Stats struct {
	// UnknownID counts messages naming an agreement nobody knows.
	UnknownID uint64 `json:"unknown_id"`
	// OutOfSequence counts messages not expected in the agreement's state.
	OutOfSequence uint64 `json:"out_of_sequence"`
	// Unasked counts offers granting prefixes or primitives the order did
	// not ask for (the offer is ignored).
	Unasked uint64 `json:"unasked"`
	// Duplicates counts retransmissions (a sequence number already seen).
	Duplicates uint64 `json:"duplicates"`
	// Full agreements bound.
	Full uint64 `json:"full"`
}

// MaxAgreements bounds the agreements one negotiator keeps.
const MaxAgreements = 1024

// Negotiator runs both sides of CPNP for one mapping system: its orders as
// customer, and the orders it gets as provider (decided by Policy). It is
// not safe for concurrent use: one goroutine (the control loop) drives it.
type Negotiator struct {
	// Name prefixes the identifiers this side assigns.
	Name   string
	Policy Policy
	// Log, when set, receives a line for every refused message.
	Log func(msg string, args ...any)

	byCustomer map[key]*Agreement
	seq        uint32
	next       uint64
	lastSeq    map[string]uint32 // the last sequence number seen per peer and transaction
	stats      Stats
}

// key is an agreement's identity: the peer and the customer's identifier.
type key struct {
	peer, customerID string
}

// New returns a negotiator named name with the provider's policy (nil
// declines every order).
func New(name string, policy Policy) *Negotiator {
	return &Negotiator{Name: name, Policy: policy, byCustomer: map[key]*Agreement{}, lastSeq: map[string]uint32{}}
}

// Stats returns the counters.
func (n *Negotiator) Stats() Stats { return n.stats }

// Agreements lists the agreements, by peer then customer ID.
func (n *Negotiator) Agreements() []Agreement {
	out := make([]Agreement, 0, len(n.byCustomer))
	for _, a := range n.byCustomer {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].CustomerID < out[j].CustomerID
	})
	return out
}

// Get returns the agreement with peer under the customer's identifier.
func (n *Negotiator) Get(peer, customerID string) (Agreement, bool) {
	a, ok := n.byCustomer[key{peer, customerID}]
	if !ok {
		return Agreement{}, false
	}
	return *a, true
}

// Forget removes an ended agreement (declined, cancelled, failed or
// withdrawn) so that the bound of MaxAgreements counts live ones; it
// reports whether it removed one.
func (n *Negotiator) Forget(peer, customerID string) bool {
	k := key{peer, customerID}
	a, ok := n.byCustomer[k]
	if !ok {
		return false
	}
	switch a.State {
	case Declined, Cancelled, Failed, Withdrawn:
		delete(n.byCustomer, k)
		delete(n.lastSeq, peer+"\x00"+strconv.FormatUint(uint64(a.Transaction), 10))
		return true
	}
	return false
}

func (n *Negotiator) newID() string {
	n.next++
	return n.Name + "-" + strconv.FormatUint(n.next, 10)
}

func (n *Negotiator) msg(t Type, a *Agreement) Message {
	n.seq++
	return Message{Type: t, Seq: n.seq, Transaction: a.Transaction, CustomerID: a.CustomerID, ProviderID: a.ProviderID}
}

func withTerms(m Message, t *Terms) Message {
	m.Prefixes, m.Primitives, m.Rate, m.Duration, m.KeyRef = t.Prefixes, t.Primitives, t.Rate, t.Duration, t.KeyRef
	return m
}

func (n *Negotiator) refuse(counter *uint64, what string, peer string, m *Message) {
	*counter++
	if n.Log != nil {
		n.Log("CPNP message ignored: "+what, "peer", peer, "type", m.Type.String(), "customer_id", m.CustomerID,
			"provider_id", m.ProviderID, "seq", m.Seq)
	}
}

// Order starts a negotiation with peer as customer: the Quotation to send.
func (n *Negotiator) Order(peer string, asked Terms) (Message, error) {
	if len(n.byCustomer) >= MaxAgreements {
		n.stats.Full++
		return Message{}, fmt.Errorf("cpnp: %d agreements already", MaxAgreements)
	}
	a := &Agreement{Peer: peer, Customer: true, CustomerID: n.newID(), State: QuotationSent, Asked: cloneTerms(asked)}
	a.Transaction = uint32(n.next)
	n.byCustomer[key{peer, a.CustomerID}] = a
	return withTerms(n.msg(Quotation, a), &a.Asked), nil
}

// Accept takes the offer received in agreement customerID: the Accept to
// send.
func (n *Negotiator) Accept(peer, customerID string) (Message, error) {
	a, err := n.own(peer, customerID, OfferReceived)
	if err != nil {
		return Message{}, err
	}
	a.State = AcceptSent
	return n.msg(Accept, a), nil
}

// Decline refuses the offer received: the Decline to send.
func (n *Negotiator) Decline(peer, customerID string) (Message, error) {
	a, err := n.own(peer, customerID, OfferReceived)
	if err != nil {
		return Message{}, err
	}
	if a.Updating {
		a.State, a.Updating = Agreed, false // the old terms stay
	} else {
		a.State, a.Reason = Declined, ReasonOperator
	}
	m := n.msg(Decline, a)
	m.Reason = ReasonOperator
	return m, nil
}

// UpdateTerms asks for new terms of an agreed agreement: the Update to
// send. The agreed terms hold until the new ones are acknowledged.
func (n *Negotiator) UpdateTerms(peer, customerID string, asked Terms) (Message, error) {
	a, err := n.own(peer, customerID, Agreed)
	if err != nil {
		return Message{}, err
	}
	a.Updating, a.State, a.Asked = true, QuotationSent, cloneTerms(asked)
	return withTerms(n.msg(Update, a), &a.Asked), nil
}

// WithdrawAgreement ends an agreed agreement from either side: the
// Withdraw to send.
func (n *Negotiator) WithdrawAgreement(peer, customerID string) (Message, error) {
	a, ok := n.byCustomer[key{peer, customerID}]
	if !ok || a.State != Agreed {
		return Message{}, fmt.Errorf("cpnp: no agreed agreement %q with %s", customerID, peer)
	}
	a.State, a.Reason = Withdrawn, ReasonOperator
	m := n.msg(Withdraw, a)
	m.Reason = ReasonOperator
	return m, nil
}

// Abandon ends a negotiation that went nowhere: an order of this side
// whose quotation or accept went unanswered becomes Failed, an offer of
// this side never accepted nor declined becomes Cancelled (an update falls
// back to the agreed terms); Forget may then remove it. It reports whether
// there was one to end.
func (n *Negotiator) Abandon(peer, customerID string) bool {
	a, ok := n.byCustomer[key{peer, customerID}]
	if !ok {
		return false
	}
	if !a.Customer {
		if a.State != OfferSent {
			return false
		}
		if a.Updating {
			a.State, a.Updating = Agreed, false
		} else {
			a.State = Cancelled
		}
		return true
	}
	switch a.State {
	case QuotationSent, Waiting, OfferReceived, AcceptSent:
		if a.Updating {
			a.State, a.Updating = Agreed, false
			return true
		}
		a.State, a.Reason = Failed, ReasonExpired
		return true
	}
	return false
}

func (n *Negotiator) own(peer, customerID string, want State) (*Agreement, error) {
	a, ok := n.byCustomer[key{peer, customerID}]
	if !ok || !a.Customer {
		return nil, fmt.Errorf("cpnp: no order %q to %s", customerID, peer)
	}
	if a.State != want {
		return nil, fmt.Errorf("cpnp: order %q is %v, not %v", customerID, a.State, want)
	}
	return a, nil
}

// Handle takes a message from peer and returns what to answer (nothing for
// most). A message that names no known agreement, comes out of sequence,
// repeats a sequence number, or offers what was not asked is counted,
// logged and ignored.
func (n *Negotiator) Handle(peer string, m *Message) []Message {
	dk := peer + "\x00" + strconv.FormatUint(uint64(m.Transaction), 10)
	if last, ok := n.lastSeq[dk]; ok && m.Seq <= last {
		n.refuse(&n.stats.Duplicates, "sequence number already seen", peer, m)
		return nil
	}
	if len(n.lastSeq) < 4*MaxAgreements {
		n.lastSeq[dk] = m.Seq
	}
	if m.Type == Quotation && m.ProviderID == "" {
		return n.onQuotation(peer, m)
	}
	a, ok := n.byCustomer[key{peer, m.CustomerID}]
	if !ok || (m.ProviderID != "" && a.ProviderID != "" && m.ProviderID != a.ProviderID) {
		n.refuse(&n.stats.UnknownID, "unknown agreement identifier", peer, m)
		return nil
	}
	if a.Customer {
		return n.customerGets(a, m)
	}
	return n.providerGets(a, m)
}

// customerGets runs the customer's side.
func (n *Negotiator) customerGets(a *Agreement, m *Message) []Message {
	switch {
	case m.Type == Processing && a.State == QuotationSent:
		a.State = Waiting
	case m.Type == Offer && (a.State == QuotationSent || a.State == Waiting):
		offered := Terms{Prefixes: m.Prefixes, Primitives: m.Primitives, Rate: m.Rate, Duration: m.Duration, KeyRef: m.KeyRef}
		if !within(&offered, &a.Asked) {
			n.refuse(&n.stats.Unasked, "offer grants what the order did not ask for", a.Peer, m)
			return nil
		}
		a.ProviderID, a.Offered, a.State = m.ProviderID, cloneTerms(offered), OfferReceived
	case m.Type == Ack && a.State == AcceptSent:
		a.Agreed, a.State, a.Updating = cloneTerms(a.Offered), Agreed, false
	case m.Type == Decline && (a.State == QuotationSent || a.State == Waiting):
		if a.Updating {
			a.State, a.Updating = Agreed, false
		} else {
			a.State, a.Reason = Declined, m.Reason
		}
	case m.Type == Fail && a.State != Agreed && a.State != Withdrawn:
		a.State, a.Reason = Failed, m.Reason
	case m.Type == Withdraw && a.State == Agreed:
		a.State, a.Reason = Withdrawn, m.Reason
		return []Message{n.msg(Ack, a)}
	case m.Type == Ack && a.State == Withdrawn:
		// The provider confirms our withdrawal.
	default:
		n.refuse(&n.stats.OutOfSequence, "out of sequence for "+a.State.String(), a.Peer, m)
	}
	return nil
}

// onQuotation runs the provider's side of a new order.
func (n *Negotiator) onQuotation(peer string, m *Message) []Message {
	k := key{peer, m.CustomerID}
	if m.CustomerID == "" {
		n.refuse(&n.stats.UnknownID, "quotation without a customer identifier", peer, m)
		return nil
	}
	if _, dup := n.byCustomer[k]; dup {
		n.refuse(&n.stats.OutOfSequence, "second quotation for an identifier in use", peer, m)
		return nil
	}
	if len(n.byCustomer) >= MaxAgreements {
		n.stats.Full++
		return []Message{{Type: Fail, Seq: n.nextSeq(), Transaction: m.Transaction, CustomerID: m.CustomerID, Reason: ReasonPolicy, Text: "too many agreements"}}
	}
	a := &Agreement{Peer: peer, CustomerID: m.CustomerID, Transaction: m.Transaction,
		Asked: cloneTerms(Terms{Prefixes: m.Prefixes, Primitives: m.Primitives, Rate: m.Rate, Duration: m.Duration, KeyRef: m.KeyRef})}
	return n.offer(a, k, Quotation)
}

// offer asks the policy about a's order and answers it.
func (n *Negotiator) offer(a *Agreement, k key, asked Type) []Message {
	var offer Terms
	ok := false
	if n.Policy != nil {
		offer, ok = n.Policy(a.Peer, cloneTerms(a.Asked))
	}
	if ok && !within(&offer, &a.Asked) {
		ok = false // a policy may not give more than asked
	}
	if !ok || (len(offer.Prefixes) == 0 && len(a.Asked.Prefixes) > 0) {
		m := n.msg(Decline, a)
		m.Reason = ReasonPolicy
		if asked == Update {
			a.Updating = false // the agreed terms stay
			return []Message{m}
		}
		a.State, a.Reason = Declined, ReasonPolicy
		n.byCustomer[k] = a
		return []Message{m}
	}
	if a.ProviderID == "" {
		a.ProviderID = n.newID()
	}
	a.Offered, a.State = cloneTerms(offer), OfferSent
	n.byCustomer[k] = a
	return []Message{withTerms(n.msg(Offer, a), &a.Offered)}
}

// providerGets runs the provider's side of an order it answered.
func (n *Negotiator) providerGets(a *Agreement, m *Message) []Message {
	switch {
	case m.Type == Accept && a.State == OfferSent:
		a.Agreed, a.State, a.Updating = cloneTerms(a.Offered), Agreed, false
		return []Message{n.msg(Ack, a)}
	case m.Type == Decline && a.State == OfferSent:
		if a.Updating {
			a.State, a.Updating = Agreed, false
		} else {
			a.State, a.Reason = Declined, m.Reason
		}
	case m.Type == Cancel && a.State == OfferSent && !a.Updating:
		a.State = Cancelled
	case m.Type == Update && a.State == Agreed:
		a.Updating = true
		a.Asked = cloneTerms(Terms{Prefixes: m.Prefixes, Primitives: m.Primitives, Rate: m.Rate, Duration: m.Duration, KeyRef: m.KeyRef})
		out := n.offer(a, key{a.Peer, a.CustomerID}, Update)
		if out[0].Type == Decline {
			a.State = Agreed
		}
		return out
	case m.Type == Withdraw && a.State == Agreed:
		a.State, a.Reason = Withdrawn, m.Reason
		return []Message{n.msg(Ack, a)}
	case m.Type == Ack && a.State == Withdrawn:
	default:
		n.refuse(&n.stats.OutOfSequence, "out of sequence for "+a.State.String(), a.Peer, m)
	}
	return nil
}

func (n *Negotiator) nextSeq() uint32 { n.seq++; return n.seq }

// within reports whether offered grants nothing beyond asked: its
// prefixes are among (or inside) those asked, its primitives a subset, its
// rate and duration no more (when asked states them).
func within(offered, asked *Terms) bool {
	if offered.Primitives&^asked.Primitives != 0 {
		return false
	}
	if asked.Rate != 0 && (offered.Rate == 0 || offered.Rate > asked.Rate) {
		return false
	}
	if asked.Duration != 0 && (offered.Duration == 0 || offered.Duration > asked.Duration) {
		return false
	}
	for _, o := range offered.Prefixes {
		if !slices.ContainsFunc(asked.Prefixes, func(p Prefix) bool {
			return p.IID == o.IID && p.Prefix.Bits() <= o.Prefix.Bits() && p.Prefix.Contains(o.Prefix.Addr())
		}) {
			return false
		}
	}
	return true
}

func cloneTerms(t Terms) Terms {
	t.Prefixes = slices.Clone(t.Prefixes)
	return t
}
