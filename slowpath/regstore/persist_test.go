package regstore_test

import (
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// memJournal is a journal in a map, as a state file holds it.
type memJournal struct {
	m       map[string]regstore.Saved
	deletes int
}

func (j *memJournal) Save(k []byte, s *regstore.Saved) {
	c := *s
	c.Nonces = append([]wire.Nonce(nil), s.Nonces...)
	c.Record = append([]byte(nil), s.Record...)
	j.m[string(k)] = c
}

func (j *memJournal) Delete(k []byte) { delete(j.m, string(k)); j.deletes++ }

func (j *memJournal) saved() []regstore.Saved {
	var out []regstore.Saved
	for _, s := range j.m {
		out = append(out, s)
	}
	return out
}

// TestJournalRestore: what a store saved registers again in a new store
// (a restart) with its deadline and nonces; what expired is dropped and
// deleted from the journal; withdrawals and expiries are deleted.
func TestJournalRestore(t *testing.T) {
	j := &memJournal{m: map[string]regstore.Saved{}}
	e := newEnv(t, prefixKind(), nil, regstore.Config{Timeout: 3 * time.Minute})
	e.st.SetJournal(j)
	n1 := wire.Nonce{0xcc, 1}
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, nonce: n1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}})
	e.register(t, etr2, reg{key: keyA, records: []wire.Record{eidRecord(0, "10.3.0.0/16", 10, "192.0.2.2")}})
	e.clk.Advance(time.Minute)
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.4.0.0/16", 10, "192.0.2.1")}})
	e.register(t, etr1, reg{key: keyA, xtr: &xtr2, records: []wire.Record{eidRecord(0, "10.5.0.0/16", 10, "192.0.2.1")}})
	e.register(t, etr1, reg{key: keyA, xtr: &xtr2, records: []wire.Record{eidRecord(0, "10.5.0.0/16", 0)}})
	if len(j.m) != 3 || j.deletes != 1 {
		t.Fatalf("journal has %d, %d deletes; want 3, 1", len(j.m), j.deletes)
	}

	// Restart 2.5 min after the first: the two first live 30 s more.
	e.clk.Advance(90 * time.Second)
	r := newEnv(t, prefixKind(), nil, regstore.Config{Timeout: 3 * time.Minute})
	r.clk.Set(e.clk.Now())
	r.st.SetJournal(j)
	if n, d := r.st.Restore(j.saved()); n != 3 || d != 0 {
		t.Fatalf("restored %d, dropped %d", n, d)
	}
	ent := r.st.Entry(key{pfx: mustPrefix("10.2.0.0/16")})
	if ent == nil || ent.Registrants()[0].Source != etr1 || !ent.Registrants()[0].Expires.Equal(t0.Add(3*time.Minute)) ||
		ent.Registrants()[0].ID.XTRID != xtr1 {
		t.Fatalf("restored %+v", ent)
	}
	if r.st.Entry(key{pfx: mustPrefix("10.3.0.0/16")}).Registrants()[0].ID.Source != etr2 {
		t.Fatal("registrant by source not restored")
	}
	// Its nonce came back: a replay is refused.
	if res := r.register(t, etr2, reg{key: keyA, xtr: &xtr1, nonce: n1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}); res.Replayed != 1 {
		t.Fatalf("replay after restore: %+v", res)
	}
	// They expire at their deadlines, and leave the journal.
	r.clk.Advance(30 * time.Second)
	if r.st.Len() != 1 || len(j.m) != 1 {
		t.Fatalf("after the first deadline: %d keys, journal %d", r.st.Len(), len(j.m))
	}

	// Another restart after everything expired: nothing restored, the
	// journal cleaned.
	stale := j.saved()
	r.clk.Advance(time.Hour)
	r2 := newEnv(t, prefixKind(), nil, regstore.Config{})
	r2.clk.Set(r.clk.Now())
	r2.st.SetJournal(j)
	j.m = map[string]regstore.Saved{}
	for i, s := range stale {
		j.m[string(rune(i))] = s
	}
	before := j.deletes
	if n, d := r2.st.Restore(stale); n != 0 || d != 1 || r2.st.Len() != 0 || j.deletes != before+1 {
		t.Fatalf("after expiry: restored %d, dropped %d, %d deletes", n, d, j.deletes-before)
	}
}

// TestRestoreRefusesWhatIsNoLongerAllowed: a saved registration of a
// prefix its site no longer owns, or of another site, is dropped.
func TestRestoreRefusesWhatIsNoLongerAllowed(t *testing.T) {
	j := &memJournal{m: map[string]regstore.Saved{}}
	e := newEnv(t, prefixKind(), nil, regstore.Config{})
	e.st.SetJournal(j)
	e.register(t, etr1, reg{key: keyA, xtr: &xtr1, records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}})
	saved := j.saved()
	saved[0].Site = "b"
	r := newEnv(t, prefixKind(), nil, regstore.Config{})
	if n, d := r.st.Restore(saved); n != 0 || d != 1 {
		t.Fatalf("other site: restored %d, dropped %d", n, d)
	}
	saved[0].Site = "a"
	saved[0].Record = saved[0].Record[:len(saved[0].Record)-1]
	if n, d := r.st.Restore(saved); n != 0 || d != 1 {
		t.Fatalf("truncated record: restored %d, dropped %d", n, d)
	}
}
