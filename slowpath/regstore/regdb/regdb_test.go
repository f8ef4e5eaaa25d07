package regdb_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/regstore/regdb"
	"github.com/rloc-router/rloc/wire"
)

func saved(i int) regstore.Saved {
	return regstore.Saved{Site: "a", ID: regstore.ID{XTRID: wire.XTRID{byte(i)}}, Source: netip.MustParseAddrPort("192.0.2.1:4342"),
		HasXTRID: true, SiteID: 7, ProxyReply: true, Expires: time.Date(2026, 12, 3, 15, 0, i, 0, time.UTC),
		Nonces: []wire.Nonce{{byte(i)}}, Record: []byte{1, 2, 3, byte(i)}}
}

// TestWriteBehind: changes wait in memory, a key changed many times is
// written once, Flush writes them in one go, and a reopened file loads
// what was written; Close writes what is pending.
func TestWriteBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "regs.db")
	d, err := regdb.Open(path, time.Hour, nil) // no flush by the ticker during the test
	if err != nil {
		t.Fatal(err)
	}
	j := d.Journal("unicast")
	for round := range 100 {
		for i := range 10 {
			s := saved(i)
			s.SiteID = uint64(round)
			j.Save([]byte{byte(i)}, &s)
		}
	}
	j.Delete([]byte{9})
	if n := d.Pending(); n != 10 {
		t.Fatalf("%d pending after 1000 saves of 10 keys and a delete, want 10", n)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := d.Pending(); n != 0 {
		t.Fatalf("%d pending after Flush", n)
	}
	if st := d.Stats(); st != (regdb.Stats{Flushes: 1, Written: 10}) {
		t.Fatalf("stats %+v: want one transaction of 10 changes", st)
	}
	if err := d.Flush(); err != nil || d.Stats().Flushes != 1 {
		t.Fatalf("an empty flush wrote: %v, %+v", err, d.Stats())
	}
	got, err := d.Load("unicast")
	if err != nil || len(got) != 9 {
		t.Fatalf("load: %d, %v", len(got), err)
	}
	want := saved(3)
	want.SiteID = 99
	if g := got[3]; g.Site != want.Site || g.ID != want.ID || g.Source != want.Source || !g.Expires.Equal(want.Expires) ||
		g.SiteID != 99 || string(g.Record) != string(want.Record) || len(g.Nonces) != 1 || g.Nonces[0] != want.Nonces[0] {
		t.Fatalf("loaded %+v, want %+v", g, want)
	}
	// Pending at Close: written.
	s := saved(20)
	j.Save([]byte{20}, &s)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = regdb.Open(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, err := d.Load("unicast"); err != nil || len(got) != 10 {
		t.Fatalf("after reopening: %d, %v", len(got), err)
	}
	if got, err := d.Load("sg"); err != nil || len(got) != 0 {
		t.Fatalf("empty bucket: %d, %v", len(got), err)
	}
}

// TestRefused: a file that is not a database, a database of another
// program and one of another format are refused with the file named; a
// registration that does not decode fails the load.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("bbolt?"), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign")
	other := filepath.Join(dir, "other")
	for _, f := range []struct {
		path   string
		bucket string
		key    string
		val    string
	}{{foreign, "objects", "k", "v"}, {other, "rloc", "format", "rloc-registrations/0"}} {
		db, err := bolt.Open(f.path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte(f.bucket))
			if err != nil {
				return err
			}
			return b.Put([]byte(f.key), []byte(f.val))
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	for _, tc := range []struct {
		path, want string
		foreign    bool
	}{{junk, "invalid", false}, {short, "", false}, {foreign, "no format mark", true}, {other, "rloc-registrations/0", true}} {
		d, err := regdb.Open(tc.path, 0, nil)
		if err == nil {
			d.Close()
			t.Fatalf("%s opened", tc.path)
		}
		if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) || errors.Is(err, regdb.ErrForeign) != tc.foreign {
			t.Fatalf("%s: %v", tc.path, err)
		}
	}

	// A damaged registration.
	path := filepath.Join(dir, "bad-entry")
	d, err := regdb.Open(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("unicast"))
		return b.Put([]byte("k"), []byte("{not json"))
	})
	db.Close()
	d, err = regdb.Open(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Load("unicast"); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged entry: %v", err)
	}
}

// BenchmarkSaveFlush: a register storm's cost on the event loop (Save)
// and per flush (one transaction for every registration changed).
func BenchmarkSaveFlush(b *testing.B) {
	d, err := regdb.Open(filepath.Join(b.TempDir(), "regs.db"), time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	j := d.Journal("unicast")
	s := saved(1)
	b.Run("save", func(b *testing.B) {
		for i := range b.N {
			j.Save([]byte(fmt.Sprint(i%10000)), &s)
		}
	})
	b.Run("flush-10000", func(b *testing.B) {
		for range b.N {
			for i := range 10000 {
				j.Save([]byte(fmt.Sprint(i)), &s)
			}
			if err := d.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCheck: Check accepts what Open accepts (a missing file in an
// existing directory, a file of this format, one held open by a running
// daemon) and refuses what it refuses, changing nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := regdb.Check(filepath.Join(dir, "new.db")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Check created the file")
	}
	if err := regdb.Check(filepath.Join(dir, "no-such-dir", "x.db")); err == nil {
		t.Fatal("missing directory accepted")
	}
	good := filepath.Join(dir, "good.db")
	d, err := regdb.Open(good, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := regdb.Check(good); err != nil {
		t.Fatalf("held open: %v", err)
	}
	d.Close()
	if err := regdb.Check(good); err != nil {
		t.Fatalf("closed: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := regdb.Check(junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Fatalf("junk: %v", err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("objects")); return err })
	db.Close()
	if err := regdb.Check(foreign); !errors.Is(err, regdb.ErrForeign) || !strings.Contains(err.Error(), foreign) {
		t.Fatalf("foreign: %v", err)
	}
}
