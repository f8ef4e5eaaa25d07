package regstore_test

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// family is one kind of registration with a record factory, so that the
// lifecycle tests run for each.
type family struct {
	kind func() *kind
	// rec returns a record of the family allowed to site "a" (i = 0) or,
	// with strict, to site "strict" (RequireXTRID).
	rec func(strict bool, ttl uint32, rlocs ...string) wire.Record
	// sites, when set, replaces the test sites (tree joins: one open site).
	sites func(testing.TB) *regstore.Sites
	key   regstore.Key
}

func families() map[string]family {
	return map[string]family{
		"eid-prefix": {kind: prefixKind, key: keyA, rec: func(strict bool, ttl uint32, rlocs ...string) wire.Record {
			if strict {
				return eidRecord(0, "172.16.1.0/24", ttl, rlocs...)
			}
			return eidRecord(0, "10.2.0.0/16", ttl, rlocs...)
		}},
		"group-name": {kind: groupNameKind, key: keyA, rec: func(strict bool, ttl uint32, rlocs ...string) wire.Record {
			if strict {
				return nameRecord(0, "238.1.0.0/16", ttl, rlocs...)
			}
			return nameRecord(0, "239.1.2.0/24", ttl, rlocs...)
		}},
		"sg": {kind: func() *kind { return sgKind("sg") }, key: keyA, rec: func(strict bool, ttl uint32, rlocs ...string) wire.Record {
			if strict {
				return sgRecord(0, "172.16.0.1/32", "238.1.1.1/32", ttl, rlocs...)
			}
			return sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", ttl, rlocs...)
		}},
		"tree-join": {kind: func() *kind { return sgKind("tree") }, key: keyM,
			sites: func(testing.TB) *regstore.Sites {
				return regstore.OpenSite(&regstore.Site{Name: "tree", Keys: []regstore.Key{keyM}})
			},
			rec: func(_ bool, ttl uint32, rlocs ...string) wire.Record {
				return sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", ttl, rlocs...)
			}},
	}
}

func (f family) env(t testing.TB, cfg regstore.Config, strict bool) *env {
	var sites *regstore.Sites
	if f.sites != nil {
		sites = f.sites(t)
		if strict {
			sites = regstore.OpenSite(&regstore.Site{Name: "tree", Keys: []regstore.Key{keyM}, RequireXTRID: true})
		}
	}
	return newEnv(t, f.kind(), sites, cfg)
}

func kinds(evs []regstore.Event[key]) []regstore.EventKind {
	var out []regstore.EventKind
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

// TestRequireXTRID: every kind of registration honours RequireXTRID and
// reports the refusal as an event (issue 10: (S,G) and tree registrations
// ignored it and emitted no events).
func TestRequireXTRID(t *testing.T) {
	for name, f := range families() {
		t.Run(name, func(t *testing.T) {
			e := f.env(t, regstore.Config{}, true)
			res := e.register(t, etr1, reg{key: f.key, records: []wire.Record{f.rec(true, 10, "192.0.2.1")}})
			if !errors.Is(res.Err, regstore.ErrXTRIDRequired) || res.Rejected != 1 || e.st.Len() != 0 {
				t.Fatalf("without xTR-ID: %+v, %d keys", res, e.st.Len())
			}
			evs := e.sink.take()
			if len(evs) != 1 || evs[0].Kind != regstore.Rejected || !errors.Is(evs[0].Reason, regstore.ErrXTRIDRequired) || evs[0].Source != etr1 {
				t.Fatalf("events %+v, want one rejection for the xTR-ID", evs)
			}
			res = e.register(t, etr1, reg{key: f.key, xtr: &xtr1, records: []wire.Record{f.rec(true, 10, "192.0.2.1")}})
			if res.Err != nil || res.Accepted != 1 {
				t.Fatalf("with xTR-ID: %+v", res)
			}
			if evs := e.sink.take(); len(evs) != 1 || evs[0].Kind != regstore.Accepted || !evs[0].HasKey || evs[0].XTRID != xtr1 {
				t.Fatalf("events %+v, want one acceptance with the key and xTR-ID", evs)
			}
		})
	}
}

// TestLifecycle: merge by xTR-ID, refresh, TTL-0 withdrawal and expiry, with
// their events and Changed calls, for every kind.
func TestLifecycle(t *testing.T) {
	for name, f := range families() {
		t.Run(name, func(t *testing.T) {
			e := f.env(t, regstore.Config{Timeout: 3 * time.Minute}, false)
			r1 := reg{key: f.key, xtr: &xtr1, records: []wire.Record{f.rec(false, 10, "192.0.2.1")}}
			r2 := reg{key: f.key, xtr: &xtr2, records: []wire.Record{f.rec(false, 10, "192.0.2.2")}}
			e.register(t, etr1, r1)
			e.register(t, etr2, r2)
			k, _ := e.kind.Key(&r1.records[0])
			ent := e.st.Entry(k)
			if ent == nil || len(ent.Registrants()) != 2 {
				t.Fatalf("two xTR-IDs: entry %v", ent)
			}
			if got := merged(ent); len(got) != 2 {
				t.Fatalf("merged %v", got)
			}
			// The same xTR-ID from another address refreshes its registration.
			e.clk.Advance(2 * time.Minute)
			r1.records = []wire.Record{f.rec(false, 10, "192.0.2.9")}
			e.register(t, etr2, r1)
			if len(ent.Registrants()) != 2 || e.st.Stats().Registrants != 2 {
				t.Fatalf("refresh added a registrant: %d", len(ent.Registrants()))
			}
			for _, r := range ent.Registrants() {
				if r.ID.XTRID == xtr1 && (r.Source != etr2 || !slices.Equal(r.Value, []netip.Addr{netip.MustParseAddr("192.0.2.9")})) {
					t.Fatalf("refresh not applied: %+v", r)
				}
			}
			// xtr2 withdraws with TTL 0.
			e.sink.take()
			r2.records = []wire.Record{f.rec(false, 0)}
			res := e.register(t, etr2, r2)
			if res.Withdrawn != 1 || len(ent.Registrants()) != 1 || ent.Registrants()[0].ID.XTRID != xtr1 {
				t.Fatalf("withdrawal: %+v, %d registrants", res, len(ent.Registrants()))
			}
			if got := kinds(e.sink.take()); !slices.Equal(got, []regstore.EventKind{regstore.Withdrawn}) {
				t.Fatalf("events %v, want withdrawn", got)
			}
			// xtr1 was refreshed at 2 min: alive at 4 min 59, gone at 5 min.
			e.clk.Set(t0.Add(5*time.Minute - time.Second))
			if e.st.Entry(k) == nil {
				t.Fatal("expired before its refreshed deadline")
			}
			e.clk.Set(t0.Add(5 * time.Minute))
			if e.st.Entry(k) != nil || e.st.Stats().Registrants != 0 || e.st.Stats().Expired != 1 {
				t.Fatalf("not expired: %+v", e.st.Stats())
			}
			evs := e.sink.take()
			if len(evs) != 1 || evs[0].Kind != regstore.Expired || evs[0].Key != k || evs[0].Source != etr2 || evs[0].XTRID != xtr1 {
				t.Fatalf("events %+v, want expired of xtr1", evs)
			}
			// Changed saw: 1, 2 registrants, the refresh (2), the
			// withdrawal (1), the expiry (0).
			if !slices.Equal(e.kind.changes, []int{1, 2, 2, 1, 0}) {
				t.Fatalf("Changed with %v registrants", e.kind.changes)
			}
			if e.clk.Pending() != 0 {
				t.Fatalf("%d timers left", e.clk.Pending())
			}
		})
	}
}

// TestMergeBySource: registrants without xTR-ID are told apart by source.
func TestMergeBySource(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{})
	r := reg{key: keyA, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}
	e.register(t, etr1, r)
	e.register(t, etr1, r)
	e.register(t, etr2, r)
	ent := e.st.Entry(key{pfx: netip.MustParsePrefix("10.2.0.0/16")})
	if ent == nil || len(ent.Registrants()) != 2 {
		t.Fatalf("entry %+v", ent)
	}
	if !e.st.Remove(ent.Key, regstore.ID{Source: etr1}) || e.st.Remove(ent.Key, regstore.ID{Source: etr1}) {
		t.Fatal("Remove did not remove exactly once")
	}
	if len(ent.Registrants()) != 1 || ent.Registrants()[0].Source != etr2 {
		t.Fatalf("left %+v", ent.Registrants())
	}
}

func TestTTLExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		useTTL  bool
		ttl     uint32
		refresh uint32 // a second register's TTL, 0: none
		want    time.Duration
	}{
		{"timeout", false, 60, 0, 3 * time.Minute},
		{"T bit", true, 10, 0, 10 * time.Minute},
		{"T bit receiver decides", true, wire.TTLReceiverDecides, 0, 3 * time.Minute},
		{"shorter refresh moves the deadline earlier", true, 10, 1, time.Minute},
		{"longer refresh moves it later", true, 1, 20, 20 * time.Minute},
		// The largest TTL saturates at the longest duration: alive for
		// centuries, not expired at once.
		{"T bit largest TTL", true, 0xfffffffe, 0, time.Duration(math.MaxInt64/int64(time.Minute)) * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, prefixKind(), nil, regstore.Config{Timeout: 3 * time.Minute})
			r := reg{key: keyA, useTTL: tc.useTTL, records: []wire.Record{eidRecord(0, "10.2.0.0/16", tc.ttl, "192.0.2.1")}}
			e.register(t, etr1, r)
			if tc.refresh != 0 {
				r.records[0].TTL = tc.refresh
				e.register(t, etr1, r)
			}
			k := key{pfx: netip.MustParsePrefix("10.2.0.0/16")}
			e.clk.Set(t0.Add(tc.want - time.Nanosecond))
			if e.st.Entry(k) == nil {
				t.Fatalf("gone before %v", tc.want)
			}
			e.clk.Set(t0.Add(tc.want))
			if e.st.Entry(k) != nil {
				t.Fatalf("alive at %v", tc.want)
			}
		})
	}
}

func TestMaxRegistrants(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{MaxRegistrants: 2})
	rec := []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}
	for i, src := range []netip.AddrPort{etr1, etr2} {
		if res := e.register(t, src, reg{key: keyA, records: rec}); res.Accepted != 1 {
			t.Fatalf("registrant %d: %+v", i, res)
		}
	}
	res := e.register(t, itr1, reg{key: keyA, records: rec})
	if !errors.Is(res.Err, regstore.ErrNothingAccepted) || res.Rejected != 1 {
		t.Fatalf("third registrant: %+v", res)
	}
	if evs := e.sink.take(); !errors.Is(evs[len(evs)-1].Reason, regstore.ErrTooManyRegistrants) {
		t.Fatalf("last event %+v", evs[len(evs)-1])
	}
	if res := e.register(t, etr1, reg{key: keyA, records: rec}); res.Accepted != 1 {
		t.Fatalf("a known registrant's refresh refused at the bound: %+v", res)
	}
}

// TestValueRefused: the kind's own check refuses a record with its reason.
func TestValueRefused(t *testing.T) {
	k := prefixKind()
	bad := errors.New("RLE too large")
	k.refuse = bad
	e := newEnv(t, k, nil, regstore.Config{})
	res := e.register(t, etr1, reg{key: keyA, notify: true, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}})
	if res.Rejected != 1 || e.st.Len() != 0 || len(e.snd.Sent) != 0 {
		t.Fatalf("%+v, %d keys, %d sent", res, e.st.Len(), len(e.snd.Sent))
	}
	if evs := e.sink.take(); len(evs) != 1 || !errors.Is(evs[0].Reason, bad) {
		t.Fatalf("events %+v", evs)
	}
}

func TestSiteAuthorisation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    func() *kind
		key     regstore.Key
		records []wire.Record
		err     error // of the message
		results []error
	}{
		{name: "more-specific of a site prefix", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}},
		{name: "the site prefix itself", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(0, "10.0.0.0/8", 10, "192.0.2.1")}},
		{name: "exact prefix in an instance", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(5, "192.168.1.0/24", 10, "192.0.2.1")}},
		{name: "more-specific of an exact-only prefix", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(5, "192.168.1.0/25", 10, "192.0.2.1")}, err: regstore.ErrNoSite},
		{name: "right prefix, wrong instance", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(0, "192.168.1.0/24", 10, "192.0.2.1")}, err: regstore.ErrNoSite},
		{name: "the most specific site decides", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(0, "10.1.2.0/24", 10, "192.0.2.1")}, err: regstore.ErrNoSite},
		{name: "another site's prefix with this site's key", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(0, "10.1.0.0/16", 10, "192.0.2.1")}, err: regstore.ErrAuth},
		{name: "another site's prefix with its key", kind: prefixKind, key: keyB,
			records: []wire.Record{eidRecord(0, "10.1.0.0/16", 10, "192.0.2.1")}},
		{name: "second record of another site", kind: prefixKind, key: keyA,
			records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1"), eidRecord(0, "10.1.0.0/16", 10, "192.0.2.1")},
			results: []error{nil, regstore.ErrOutsideSite}},
		{name: "group name in a site range", kind: groupNameKind, key: keyA,
			records: []wire.Record{nameRecord(0, "239.1.2.0/24", 10, "192.0.2.1")}},
		{name: "group name outside every range", kind: groupNameKind, key: keyA,
			records: []wire.Record{nameRecord(0, "239.2.0.0/16", 10, "192.0.2.1")}, err: regstore.ErrNoSite},
		{name: "(S,G) in a site group range", kind: func() *kind { return sgKind("sg") }, key: keyA,
			records: []wire.Record{sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", 10, "192.0.2.1")}},
		{name: "(*,G) in a site group range", kind: func() *kind { return sgKind("sg") }, key: keyA,
			records: []wire.Record{sgRecord(0, "0.0.0.0/0", "239.1.1.1/32", 10, "192.0.2.1")}},
		{name: "IPv6 (S,G) in an instance", kind: func() *kind { return sgKind("sg") }, key: keyA,
			records: []wire.Record{sgRecord(7, "2001:db8::1/128", "ff3e::1234/128", 10, "192.0.2.1")}},
		{name: "(S,G) outside every range", kind: func() *kind { return sgKind("sg") }, key: keyA,
			records: []wire.Record{sgRecord(0, "10.0.0.1/32", "239.9.9.9/32", 10, "192.0.2.1")}, err: regstore.ErrNoSite},
		{name: "(S,G) record in a prefix store", kind: prefixKind, key: keyA,
			records: []wire.Record{sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", 10, "192.0.2.1")}, err: regstore.ErrNotThisKind},
		{name: "no records", kind: prefixKind, key: keyA, err: regstore.ErrNoRecords},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.kind(), nil, regstore.Config{})
			res := e.register(t, etr1, reg{key: tc.key, records: tc.records})
			if !errors.Is(res.Err, tc.err) || (tc.err == nil) != (res.Err == nil) && tc.results == nil {
				t.Fatalf("Err = %v, want %v", res.Err, tc.err)
			}
			evs := e.sink.take()
			if tc.err != nil {
				if res.Rejected != len(tc.records) || len(evs) != 1 || evs[0].Kind != regstore.Rejected || !errors.Is(evs[0].Reason, tc.err) {
					t.Fatalf("refusal: %+v, events %+v", res, evs)
				}
				return
			}
			want := tc.results
			if want == nil {
				want = make([]error, len(tc.records))
			}
			if len(evs) != len(want) {
				t.Fatalf("events %+v, want %d", evs, len(want))
			}
			for i, w := range want {
				if w == nil && evs[i].Kind != regstore.Accepted || w != nil && (evs[i].Kind != regstore.Rejected || !errors.Is(evs[i].Reason, w)) {
					t.Errorf("record %d: event %+v, want %v", i, evs[i], w)
				}
			}
		})
	}
}

func TestNewSitesRefusesDuplicates(t *testing.T) {
	_, err := regstore.NewSites([]*regstore.Site{
		{Name: "a", Prefixes: []regstore.SitePrefix{pfx(3, "10.0.0.0/8")}},
		{Name: "b", Prefixes: []regstore.SitePrefix{pfx(3, "10.0.0.0/8")}},
	})
	if err == nil {
		t.Fatal("a prefix of two sites accepted")
	}
	if _, err := regstore.NewSites([]*regstore.Site{{Name: "a", Prefixes: []regstore.SitePrefix{{}}}}); err == nil {
		t.Fatal("an invalid prefix accepted")
	}
}

// TestSolicitedNotify: the M bit is answered with a Map-Notify that echoes
// the nonce and xTR-ID and is signed like the register; a merge register is
// confirmed with the merged mapping.
func TestSolicitedNotify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    regstore.Key
		full   bool
		merge  bool
		notify bool
		want   int // locators confirmed, -1: no Map-Notify
	}{
		{"no M bit", keyA, false, false, false, -1},
		{"sha256 truncated", keyA, false, false, true, 1},
		{"sha1 full, key ID 0", keyA0, true, false, true, 1},
		{"merged", keyA, false, true, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, prefixKind(), nil, regstore.Config{})
			e.register(t, etr2, reg{key: keyA, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.2")}})
			r := reg{key: tc.key, full: tc.full, merge: tc.merge, notify: tc.notify, xtr: &xtr1,
				records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}
			raw, m := r.encode(t)
			e.snd.Take()
			e.st.Register(etr1, raw, m)
			sent := e.snd.Take()
			if tc.want < 0 {
				if len(sent) != 0 {
					t.Fatalf("%d messages sent without the M bit", len(sent))
				}
				return
			}
			if len(sent) != 1 || sent[0].Dst != etr1 || sent[0].Type != wire.TypeMapNotify {
				t.Fatalf("sent %+v", sent)
			}
			var n wire.MapNotify
			if err := wire.VerifyMapNotify(sent[0].Msg, tc.key.Secret, &n); err != nil {
				t.Fatal(err)
			}
			if n.Nonce != m.Nonce || !n.XTRIDPresent || n.XTRID != xtr1 || n.SiteID != 77 ||
				n.Auth.KeyID != tc.key.KeyID || len(n.Auth.Data) != wire.AuthDataLen(tc.key.Alg, tc.full) {
				t.Fatalf("Map-Notify %+v", n)
			}
			if len(n.Records) != 1 || len(n.Records[0].Locators) != tc.want {
				t.Fatalf("confirmed %+v, want %d locators", n.Records, tc.want)
			}
		})
	}
}

// TestNoNotifyWhenNothingAccepted: a register whose records are all refused
// gets no Map-Notify.
func TestNoNotifyWhenNothingAccepted(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{})
	res := e.register(t, etr1, reg{key: keyA, notify: true, records: []wire.Record{
		eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1"), eidRecord(0, "10.1.0.0/16", 10)}})
	if res.Accepted != 1 || len(e.snd.Take()) != 1 {
		t.Fatalf("partly accepted: %+v", res)
	}
	k := prefixKind()
	k.refuse = errors.New("no")
	e = newEnv(t, k, nil, regstore.Config{})
	e.register(t, etr1, reg{key: keyA, notify: true, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}})
	if len(e.snd.Take()) != 0 {
		t.Fatal("Map-Notify for a refused register")
	}
}

func TestSetSites(t *testing.T) {
	e := newEnv(t, prefixKind(), nil, regstore.Config{})
	e.register(t, etr1, reg{key: keyA, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1"), eidRecord(0, "10.3.0.0/16", 10, "192.0.2.1")}})
	static := key{pfx: netip.MustParsePrefix("10.4.0.0/16")}
	if err := e.st.AddStatic(static, &regstore.Site{Name: "a"}, []netip.Addr{netip.MustParseAddr("192.0.2.4")}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddStatic(static, &regstore.Site{Name: "a"}, nil); err == nil {
		t.Fatal("static registration added twice")
	}
	ss, err := regstore.NewSites([]*regstore.Site{
		{Name: "a", Keys: []regstore.Key{keyA}, Prefixes: []regstore.SitePrefix{pfx(0, "10.2.0.0/16")}},
		{Name: "other", Keys: []regstore.Key{keyB}, Prefixes: []regstore.SitePrefix{pfx(0, "10.3.0.0/16")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.st.SetSites(ss)
	if e.st.Entry(key{pfx: netip.MustParsePrefix("10.2.0.0/16")}) == nil {
		t.Error("a still-allowed registration was dropped")
	}
	if e.st.Entry(key{pfx: netip.MustParsePrefix("10.3.0.0/16")}) != nil {
		t.Error("a registration now of another site was kept")
	}
	if ent := e.st.Entry(static); ent == nil || !ent.Registrants()[0].Static {
		t.Error("the static registration was dropped")
	}
	e.clk.Advance(24 * time.Hour)
	if e.st.Entry(static) == nil || e.st.Len() != 1 {
		t.Errorf("after a day: %d keys, static %v", e.st.Len(), e.st.Entry(static))
	}
}

// TestRefreshDoesNotAllocate: merging a refresh of a known registrant costs
// no allocation in the store (the kind's Value reuses the registrant's
// storage through the spare value). The same message is sent again and
// again, so the replay check is off.
func TestRefreshDoesNotAllocate(t *testing.T) {
	cfg := regstore.Config{MaxRegistrants: 101, ReplayWindow: -1}
	e := newEnv(t, prefixKind(), nil, cfg)
	e.sink = nil
	e.st = regstore.New(e.clk, e.snd, regstore.Kind[key, []netip.Addr](e.kind), testSites(t), nil, cfg)
	for i := range 100 {
		x := wire.XTRID{byte(i), 1}
		e.register(t, etr1, reg{key: keyA, xtr: &x, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}})
	}
	raw, m := reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}.encode(t)
	e.st.Register(etr1, raw, m)
	e.st.Register(etr1, raw, m)
	e.kind.changes = slices.Grow(e.kind.changes[:0], 1000)
	n := testing.AllocsPerRun(100, func() { e.st.Register(etr1, raw, m) })
	// The HMAC itself allocates (crypto/hmac); the store adds nothing.
	h := testing.AllocsPerRun(100, func() {
		_, _ = wire.VerifyRegAuth(raw, &m.Auth, keyA.Secret)
	})
	if n > h {
		t.Fatalf("%v allocations per refresh, %v of them the HMAC's", n, h)
	}
}
