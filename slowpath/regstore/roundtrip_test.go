package regstore_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

// TestRegistrantRoundTrip runs both primitives against each other, as an
// ETR and a Map-Server would: the registrant's Map-Register (a request with
// Map-Notify as its reply) is lost once, retransmitted, stored, confirmed
// with a Map-Notify, and the registrant matches that reply by nonce and
// checks it with its key before completing.
func TestRegistrantRoundTrip(t *testing.T) {
	ms := netip.MustParseAddrPort("203.0.113.10:4342")
	clk := reqtest.NewClock(t0)
	etrOut := &reqtest.Sender{Clock: clk}
	msOut := &reqtest.Sender{Clock: clk}
	store := regstore.New(clk, msOut, regstore.Kind[key, []netip.Addr](prefixKind()), testSites(t), nil, regstore.Config{})
	tr := request.New(clk, etrOut, request.Config{Interval: time.Second, MaxTries: 4})

	var outcome request.Outcome
	n := tr.NewNonce()
	m := wire.MapRegister{WantMapNotify: true, XTRIDPresent: true, XTRID: xtr1, Nonce: n,
		Auth: wire.NewAuth(keyA.KeyID, keyA.Alg, false), Records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}
	msg, err := m.AppendSigned(nil, keyA.Secret)
	if err != nil {
		t.Fatal(err)
	}
	spec := request.Spec{Type: wire.TypeMapRegister, Targets: []netip.AddrPort{ms},
		Done: func(_ *request.Request, o request.Outcome) { outcome = o }}
	if _, err := tr.Start(&spec, n, msg); err != nil {
		t.Fatal(err)
	}
	etrOut.Take() // lost
	clk.Advance(time.Second)

	for _, x := range etrOut.Take() { // the retransmission reaches the Map-Server
		var reg wire.MapRegister
		if err := reg.Parse(x.Msg); err != nil {
			t.Fatal(err)
		}
		if res := store.Register(etr1, x.Msg, &reg); res.Accepted != 1 {
			t.Fatalf("Register: %+v", res)
		}
	}
	notifies := msOut.Take()
	if len(notifies) != 1 || notifies[0].Dst != etr1 {
		t.Fatalf("Map-Server sent %+v", notifies)
	}
	var mn wire.MapNotify
	if err := mn.Parse(notifies[0].Msg); err != nil {
		t.Fatal(err)
	}
	r, st := tr.Match(ms, mn.Nonce)
	if st != request.Matched {
		t.Fatalf("Map-Notify: %v", st)
	}
	if _, _, err := regstore.Verify(notifies[0].Msg, &mn.Auth, []regstore.Key{keyA}); err != nil {
		t.Fatal(err)
	}
	tr.Complete(r)
	if outcome != request.Answered || r.Tries() != 2 {
		t.Fatalf("outcome %v after %d tries", outcome, r.Tries())
	}
	clk.Advance(time.Hour)
	if len(etrOut.Take()) != 0 {
		t.Fatal("retransmitted after the Map-Notify")
	}
}
