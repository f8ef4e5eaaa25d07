package regstore_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// TestBounds: every bound refuses what goes beyond it with its error,
// counted as limited, and keeps what came before.
func TestBounds(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{MaxRegistrants: 2, MaxSiteKeys: 3, MaxRecords: 4, MaxRLOCs: 2, MaxRegistrations: 5})
	// Records per message: five refused whole.
	var five []wire.Record
	for i := range 5 {
		five = append(five, eidRecord(0, fmt.Sprintf("10.9.%d.0/24", i), 10, "192.0.2.1"))
	}
	res := e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: five})
	if !errors.Is(res.Err, regstore.ErrTooManyRecords) || res.Limited != 5 || res.Rejected != 5 || e.st.Len() != 0 {
		t.Fatalf("five records: %+v", res)
	}
	e.sink.take()
	// RLOCs per record.
	res = e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1", "192.0.2.2", "192.0.2.3")}})
	if res.Limited != 1 || e.st.Len() != 0 || !errors.Is(e.sink.take()[0].Reason, regstore.ErrTooManyRLOCs) {
		t.Fatalf("three RLOCs: %+v", res)
	}
	// Registrants per key: the third xTR-ID is refused, the first two
	// refresh.
	for i := range 3 {
		x := wire.XTRID{byte(i + 1)}
		res = e.register(t, etr1, reg{key: keyA, xtr: &x, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}})
	}
	if res.Limited != 1 || len(e.st.Entry(key{pfx: mustPrefix("10.2.0.0/16")}).Registrants()) != 2 {
		t.Fatalf("third registrant: %+v", res)
	}
	if res = e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.9")}}); res.Accepted != 1 {
		t.Fatalf("refresh at the bound: %+v", res)
	}
	// Keys per site: site a has one; two more fit, the fourth does not.
	for _, p := range []string{"10.3.0.0/16", "10.4.0.0/16", "10.5.0.0/16"} {
		res = e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, p, 10, "192.0.2.1")}})
	}
	if res.Limited != 1 || e.st.Len() != 3 {
		t.Fatalf("fourth key: %+v, %d keys", res, e.st.Len())
	}
	// Registrations in all: 2 + 1 + 1 = 4; site b adds one (5), the next
	// is refused.
	for _, x := range []wire.XTRID{{7}, {8}} {
		res = e.register(t, etr1, reg{key: keyB, xtr: &x, records: []wire.Record{eidRecord(0, "10.1.0.0/16", 10, "192.0.2.1")}})
	}
	if res.Limited != 1 || e.st.Stats().Registrants != 5 {
		t.Fatalf("sixth registration: %+v, %+v", res, e.st.Stats())
	}
	st := e.st.Stats()
	if st.Limited != 5+1+1+1+1 || st.Keys != 4 {
		t.Fatalf("stats %+v", st)
	}
	// A key's last registrant leaving frees its site's place.
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.3.0.0/16", 0)}})
	if res = e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.6.0.0/16", 10, "192.0.2.1")}}); res.Accepted != 1 {
		t.Fatalf("after a withdrawal: %+v", res)
	}
}

// TestReplayWindow: a nonce a registration accepted is a retransmission
// from its source and a replay from elsewhere, for the last ReplayWindow
// nonces; nonce 0 is never checked; -1 turns the check off.
func TestReplayWindow(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{ReplayWindow: 2})
	rec := []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}
	n := func(i byte) wire.Nonce { return wire.Nonce{0xee, i} }
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(1), notify: true})
	if res := e.register(t, etr2, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(1), notify: true}); !errors.Is(res.Err, regstore.ErrNothingAccepted) || res.Replayed != 1 {
		t.Fatalf("replay: %+v", res)
	}
	if evs := e.sink.take(); !errors.Is(evs[len(evs)-1].Reason, regstore.ErrReplayed) {
		t.Fatalf("events %+v", evs)
	}
	sent := len(e.snd.Sent)
	if res := e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(1), notify: true}); res.Retransmitted != 1 || res.Err != nil || len(e.snd.Sent) != sent+1 {
		t.Fatalf("retransmission: %+v, %d Map-Notifies", res, len(e.snd.Sent)-sent)
	}
	if r := e.st.Entry(key{pfx: mustPrefix("10.2.0.0/16")}).Registrants()[0]; r.Source != etr1 || !slices.Equal(r.Nonces, []wire.Nonce{n(1)}) {
		t.Fatalf("registrant %+v", r)
	}
	// Two more rounds push n(1) out of the window of 2.
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(2)})
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(3)})
	if res := e.register(t, etr2, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(2)}); res.Replayed != 1 {
		t.Fatalf("n(2) still in the window: %+v", res)
	}
	if res := e.register(t, etr2, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(1)}); res.Accepted != 1 {
		t.Fatalf("n(1) out of the window: %+v", res)
	}
	// Nonce 0: never a replay.
	for _, src := range []int{1, 2} {
		s := etr1
		if src == 2 {
			s = etr2
		}
		if res := e.register(t, s, reg{key: keyA, xtr: &xtr2, records: rec, nonce: wire.Nonce{}}); res.Accepted != 1 {
			t.Fatalf("nonce 0: %+v", res)
		}
	}
	// Off.
	off := newEnv(t, prefixKind(), nil, regstore.Config{ReplayWindow: -1})
	off.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(1)})
	if res := off.register(t, etr2, reg{key: keyA, xtr: &xtr1, records: rec, nonce: n(1)}); res.Accepted != 1 {
		t.Fatalf("check off: %+v", res)
	}
	if st := e.st.Stats(); st.Replayed != 2 || st.Retransmitted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRefreshUnchangedSkipsMerge: a refresh with what the registrant had
// does not call Changed; a changed one does.
func TestRefreshUnchangedSkipsMerge(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{})
	rec := []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec})
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec})
	if len(e.kind.changes) != 1 {
		t.Fatalf("Changed %d times for a registration and an unchanged refresh", len(e.kind.changes))
	}
	e.clk.Advance(time.Minute)
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec})
	if r := e.st.Entry(key{pfx: mustPrefix("10.2.0.0/16")}).Registrants()[0]; !r.Expires.Equal(t0.Add(time.Minute + regstore.DefaultTimeout)) {
		t.Fatalf("unchanged refresh did not move the deadline: %v", r.Expires)
	}
	e.register(t, etr2, reg{key: keyA, xtr: &xtr1, records: rec}) // another source
	e.register(t, etr2, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.2")}})
	if len(e.kind.changes) != 3 {
		t.Fatalf("Changed %d times, want 3 (new source, new RLOC)", len(e.kind.changes))
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestReplayedWithdrawal: a withdrawal replayed after the registrant
// registered again is refused; sent again by its source, it is a
// retransmission and changes nothing.
func TestReplayedWithdrawal(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{})
	rec := []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}
	k := key{pfx: mustPrefix("10.2.0.0/16")}
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec})
	w := reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 0)}, nonce: wire.Nonce{0xdd, 1}}
	if res := e.register(t, etr1, w); res.Withdrawn != 1 || e.st.Entry(k) != nil {
		t.Fatalf("withdrawal: %+v", res)
	}
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: rec})
	if res := e.register(t, etr2, w); res.Replayed != 1 || e.st.Entry(k) == nil {
		t.Fatalf("replayed withdrawal: %+v, entry %v", res, e.st.Entry(k))
	}
	if res := e.register(t, etr1, w); res.Retransmitted != 1 || res.Withdrawn != 0 || e.st.Entry(k) == nil {
		t.Fatalf("withdrawal sent again: %+v", res)
	}
}
