package cpnp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func pfx(iid uint32, s string) Prefix { return Prefix{IID: iid, Prefix: netip.MustParsePrefix(s)} }

func sample() Message {
	return Message{Type: Offer, Seq: 7, Transaction: 99, CustomerID: "ms-a-1", ProviderID: "ms-b-3",
		Prefixes:   []Prefix{pfx(0, "10.1.0.0/16"), pfx(7, "2001:db8::/32")},
		Primitives: PrimSubscribe | PrimBulk, Rate: 500, Duration: time.Hour, Reason: ReasonPolicy, Text: "part", KeyRef: "interconnect-key-1"}
}

// TestMessageBytes pins the encoding docs/cpnp.md documents.
func TestMessageBytes(t *testing.T) {
	m := Message{Type: Quotation, Seq: 1, Transaction: 2, CustomerID: "a", Prefixes: []Prefix{pfx(5, "10.0.0.0/8")}, Primitives: PrimBulk}
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 1, 0, 32, 0, 0, 0, 1, 0, 0, 0, 2,
		1, 1, 'a',
		3, 11, 0, 0, 0, 5, 0, 1, 8, 10, 0, 0, 0,
		4, 2, 0, 2}
	if string(b) != string(want) {
		t.Fatalf("encoded\n% x\nwant\n% x", b, want)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := sample()
	b, err := m.Append([]byte{0xee})
	if err != nil {
		t.Fatal(err)
	}
	var got Message
	if err := got.Parse(b[1:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v\nwant %+v", got, m)
	}
	for n := 0; n < len(b)-1; n++ { // every truncated prefix fails
		var x Message
		if err := x.Parse(b[1 : 1+n]); err == nil {
			t.Fatalf("prefix of %d bytes parsed: %+v", n, x)
		}
	}
}

func TestMessageRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"version", []byte{2, 1, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"type", []byte{1, 11, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"empty id", []byte{1, 1, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
		{"prefix host bits", []byte{1, 1, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 3, 11, 0, 0, 0, 0, 0, 1, 8, 10, 0, 0, 1}},
		{"prefix family", []byte{1, 1, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 3, 11, 0, 0, 0, 0, 0, 2, 8, 10, 0, 0, 0}},
		{"rate size", []byte{1, 1, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2, 0, 1}},
		{"object past the end", []byte{1, 1, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 8, 9, 'x'}},
	} {
		var m Message
		if err := m.Parse(c.b); err == nil {
			t.Errorf("%s: parsed %+v", c.name, m)
		}
	}
}

// pair is a customer and a provider negotiator and the wire between them:
// every message goes through Append and Parse.
type pair struct {
	t        *testing.T
	cust     *Negotiator
	prov     *Negotiator
	captured []Type
}

func newPair(t *testing.T, policy Policy) *pair {
	return &pair{t: t, cust: New("ms-a", nil), prov: New("ms-b", policy)}
}

// send carries m to the other side (peer "a" is the customer, "b" the
// provider) and carries its answers back, recording every message's type.
func (p *pair) send(from *Negotiator, m Message) {
	p.t.Helper()
	to, fromName := p.prov, "a"
	if from == p.prov {
		to, fromName = p.cust, "b"
	}
	b, err := m.Append(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	var got Message
	if err := got.Parse(b); err != nil {
		p.t.Fatal(err)
	}
	p.captured = append(p.captured, got.Type)
	for _, r := range to.Handle(fromName, &got) {
		p.send(to, r)
	}
}

var order = Terms{Prefixes: []Prefix{pfx(0, "10.1.0.0/16"), pfx(0, "10.2.0.0/16")}, Primitives: PrimSubscribe | PrimBulk | PrimDirect,
	Rate: 1000, Duration: 24 * time.Hour, KeyRef: "k1"}

// TestNegotiateFull: the provider offers everything, the customer accepts,
// both keep the agreement with both identifiers; then the provider
// withdraws it and the customer acknowledges.
func TestNegotiateFull(t *testing.T) {
	p := newPair(t, func(_ string, asked Terms) (Terms, bool) { return asked, true })
	q, err := p.cust.Order("b", order)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.cust, q)
	a, _ := p.cust.Get("b", q.CustomerID)
	if a.State != OfferReceived || a.ProviderID == "" || !reflect.DeepEqual(a.Offered, order) {
		t.Fatalf("customer after offer: %+v", a)
	}
	acc, err := p.cust.Accept("b", q.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.cust, acc)
	c, _ := p.cust.Get("b", q.CustomerID)
	v, _ := p.prov.Get("a", q.CustomerID)
	if c.State != Agreed || v.State != Agreed || c.ProviderID != v.ProviderID || c.CustomerID != v.CustomerID ||
		!reflect.DeepEqual(c.Agreed, order) || !reflect.DeepEqual(v.Agreed, order) {
		t.Fatalf("agreement: customer %+v provider %+v", c, v)
	}
	if want := []Type{Quotation, Offer, Accept, Ack}; !reflect.DeepEqual(p.captured, want) {
		t.Fatalf("messages %v, want %v", p.captured, want)
	}
	w, err := p.prov.WithdrawAgreement("a", q.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.prov, w)
	c, _ = p.cust.Get("b", q.CustomerID)
	v, _ = p.prov.Get("a", q.CustomerID)
	if c.State != Withdrawn || v.State != Withdrawn || p.captured[len(p.captured)-1] != Ack {
		t.Fatalf("after withdraw: %v %v %v", c.State, v.State, p.captured)
	}
	if s := p.cust.Stats(); s != (Stats{}) {
		t.Fatalf("customer refused something: %+v", s)
	}
	if !p.cust.Forget("b", q.CustomerID) || len(p.cust.Agreements()) != 0 || p.cust.Forget("b", q.CustomerID) {
		t.Fatal("the withdrawn agreement was not forgotten once")
	}
}

// TestNegotiatePartial: the policy offers one of two prefixes and no bulk;
// the customer accepts the part.
func TestNegotiatePartial(t *testing.T) {
	p := newPair(t, func(_ string, asked Terms) (Terms, bool) {
		asked.Prefixes = asked.Prefixes[:1]
		asked.Primitives &^= PrimBulk
		asked.Rate = 100
		return asked, true
	})
	q, _ := p.cust.Order("b", order)
	p.send(p.cust, q)
	acc, err := p.cust.Accept("b", q.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.cust, acc)
	c, _ := p.cust.Get("b", q.CustomerID)
	if c.State != Agreed || len(c.Agreed.Prefixes) != 1 || c.Agreed.Primitives != PrimSubscribe|PrimDirect || c.Agreed.Rate != 100 {
		t.Fatalf("partial agreement: %+v", c)
	}
}

// TestNegotiateDeclined: a provider whose policy refuses declines; a
// customer that declines an offer ends the negotiation on both sides.
func TestNegotiateDeclined(t *testing.T) {
	p := newPair(t, nil)
	q, _ := p.cust.Order("b", order)
	p.send(p.cust, q)
	if c, _ := p.cust.Get("b", q.CustomerID); c.State != Declined || c.Reason != ReasonPolicy {
		t.Fatalf("customer: %+v", c)
	}
	p = newPair(t, func(_ string, asked Terms) (Terms, bool) { return asked, true })
	q, _ = p.cust.Order("b", order)
	p.send(p.cust, q)
	d, err := p.cust.Decline("b", q.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.cust, d)
	c, _ := p.cust.Get("b", q.CustomerID)
	v, _ := p.prov.Get("a", q.CustomerID)
	if c.State != Declined || v.State != Declined {
		t.Fatalf("after decline: %v %v", c.State, v.State)
	}
}

// TestNegotiateUpdate: an agreed agreement renegotiates; an accepted
// update replaces the terms, a declined one keeps the old terms.
func TestNegotiateUpdate(t *testing.T) {
	allow := true
	p := newPair(t, func(_ string, asked Terms) (Terms, bool) { return asked, allow })
	q, _ := p.cust.Order("b", order)
	p.send(p.cust, q)
	acc, _ := p.cust.Accept("b", q.CustomerID)
	p.send(p.cust, acc)
	more := order
	more.Prefixes = append([]Prefix{pfx(0, "10.3.0.0/16")}, order.Prefixes...)
	u, err := p.cust.UpdateTerms("b", q.CustomerID, more)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.cust, u)
	acc, err = p.cust.Accept("b", q.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.cust, acc)
	c, _ := p.cust.Get("b", q.CustomerID)
	v, _ := p.prov.Get("a", q.CustomerID)
	if c.State != Agreed || len(c.Agreed.Prefixes) != 3 || len(v.Agreed.Prefixes) != 3 {
		t.Fatalf("after update: %+v / %+v", c, v)
	}
	allow = false
	u, _ = p.cust.UpdateTerms("b", q.CustomerID, order)
	p.send(p.cust, u)
	c, _ = p.cust.Get("b", q.CustomerID)
	v, _ = p.prov.Get("a", q.CustomerID)
	if c.State != Agreed || v.State != Agreed || len(c.Agreed.Prefixes) != 3 || len(v.Agreed.Prefixes) != 3 {
		t.Fatalf("after a declined update: %+v / %+v", c, v)
	}
}

// TestBadInput: unknown identifiers, messages out of sequence, repeated
// sequence numbers and offers of what nobody asked for are counted and
// ignored.
func TestBadInput(t *testing.T) {
	var logged int
	prov := New("ms-b", func(_ string, asked Terms) (Terms, bool) { return asked, true })
	prov.Log = func(string, ...any) { logged++ }
	cust := New("ms-a", nil)
	cust.Log = prov.Log

	// An Accept for an agreement the provider never offered.
	prov.Handle("a", &Message{Type: Accept, Seq: 1, Transaction: 5, CustomerID: "nobody", ProviderID: "ms-b-9"})
	// A Quotation, then an Accept repeated with its sequence number, then an
	// Update before any agreement.
	offer := prov.Handle("a", &Message{Type: Quotation, Seq: 2, Transaction: 6, CustomerID: "x", Prefixes: order.Prefixes})
	if len(offer) != 1 || offer[0].Type != Offer {
		t.Fatalf("answer %+v", offer)
	}
	prov.Handle("a", &Message{Type: Accept, Seq: 3, Transaction: 6, CustomerID: "x", ProviderID: offer[0].ProviderID})
	prov.Handle("a", &Message{Type: Accept, Seq: 3, Transaction: 6, CustomerID: "x", ProviderID: offer[0].ProviderID})
	prov.Handle("a", &Message{Type: Accept, Seq: 4, Transaction: 6, CustomerID: "x", ProviderID: offer[0].ProviderID})
	prov.Handle("a", &Message{Type: Accept, Seq: 5, Transaction: 6, CustomerID: "x", ProviderID: "ms-b-77"})
	s := prov.Stats()
	if s.UnknownID != 2 || s.Duplicates != 1 || s.OutOfSequence != 1 {
		t.Fatalf("provider stats %+v", s)
	}
	// The customer: an offer of a prefix it did not ask for, then an Ack
	// while no accept was sent.
	q, _ := cust.Order("b", Terms{Prefixes: []Prefix{pfx(0, "10.1.0.0/16")}, Primitives: PrimSubscribe})
	cust.Handle("b", &Message{Type: Offer, Seq: 1, Transaction: q.Transaction, CustomerID: q.CustomerID, ProviderID: "p",
		Prefixes: []Prefix{pfx(0, "10.9.0.0/16")}, Primitives: PrimSubscribe})
	cust.Handle("b", &Message{Type: Offer, Seq: 2, Transaction: q.Transaction, CustomerID: q.CustomerID, ProviderID: "p",
		Prefixes: []Prefix{pfx(0, "10.1.0.0/16")}, Primitives: PrimSubscribe | PrimBulk})
	cust.Handle("b", &Message{Type: Ack, Seq: 3, Transaction: q.Transaction, CustomerID: q.CustomerID, ProviderID: "p"})
	if a, _ := cust.Get("b", q.CustomerID); a.State != QuotationSent {
		t.Fatalf("customer state %v after bad offers", a.State)
	}
	if s := cust.Stats(); s.Unasked != 2 || s.OutOfSequence != 1 {
		t.Fatalf("customer stats %+v", s)
	}
	if logged != 7 {
		t.Fatalf("%d log lines, want one per refused message (7)", logged)
	}
}

// FuzzParse: any input parses or fails cleanly; what parses encodes again
// to the same message.
func FuzzParse(f *testing.F) {
	m := sample()
	b, _ := m.Append(nil)
	f.Add(b)
	q := Message{Type: Quotation, Seq: 1, CustomerID: "c"}
	b, _ = q.Append(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Parse(b) != nil {
			return
		}
		if len(m.Text) > 255 {
			return
		}
		e, err := m.Append(nil)
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", m, err)
		}
		var back Message
		if err := back.Parse(e); err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip %+v -> %+v (%v)", m, back, err)
		}
	})
}
