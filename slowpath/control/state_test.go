package control

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// stateEngine starts a Map-Server keeping its registrations in path, on
// the fake clock clk.
func stateEngine(t *testing.T, path string, clk *fakeClock) (*Engine, error) {
	t.Helper()
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.StateFile = path
	c.MapServer.RegistrationTimeout = 3 * time.Minute
	c.Listen = []netip.AddrPort{lo4Any}
	c.Logger = testLogger(t)
	return NewWithOptions(c, nil, slowpathOptions(clk))
}

// TestStateFileRestart (issue 13, problem 8): registrations survive a
// restart (close and reopen of the engine on the same file) with their
// remaining lifetime, are answered from at once, and expire when they
// would have; one that expired while the Map-Server was down is not
// brought back.
func TestStateFileRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registrations.db")
	clk := newFakeClock()
	ms, err := stateEngine(t, path, clk)
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	rloc := netip.MustParseAddr("192.0.2.1")
	registerXTR(t, ms, src, "10.1.2.0/24", xtrA, newNonce(), rloc)
	clk.Add(time.Minute)
	registerXTR(t, ms, src, "10.1.3.0/24", xtrA, newNonce(), rloc)
	before := ms.Registrations()
	if len(before) != 2 {
		t.Fatalf("%d registrations before the restart", len(before))
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}

	// Down for 30 s: both come back, with their deadlines.
	clk.Add(30 * time.Second)
	ms, err = stateEngine(t, path, clk)
	if err != nil {
		t.Fatal(err)
	}
	after := ms.Registrations()
	if len(after) != 2 {
		t.Fatalf("after the restart: %+v", after)
	}
	for _, a := range after {
		found := false
		for _, b := range before {
			found = found || a.EID == b.EID && a.Expires.Equal(b.Expires) && a.Source == b.Source && a.XTRID == b.XTRID
		}
		if !found {
			t.Fatalf("restored %+v, not as before %+v", a, before)
		}
	}
	// The restored registrations' source keeps the trust an accepted
	// registration gives (spared the rate limit's totals), another not.
	_ = ms.Core().Tick()
	if !ms.Core().Trusted(src.Addr()) || ms.Core().Trusted(netip.MustParseAddr("192.0.2.99")) {
		t.Fatalf("trust after the restart: %v for the restored source, %v for another",
			ms.Core().Trusted(src.Addr()), ms.Core().Trusted(netip.MustParseAddr("192.0.2.99")))
	}
	res := newResolverConn(t)
	for i, eid := range []string{"10.1.2.1", "10.1.3.1"} {
		if rep := res.ask(ms, eid, uint64(i+1)); len(rep.Records) != 1 || len(rep.Records[0].Locators) != 1 {
			t.Fatalf("first request for %s after the restart: %+v", eid, rep.Records)
		}
	}
	// The first expires 3 min after its register (1.5 min from now), the
	// second a minute later.
	clk.Add(90 * time.Second)
	_ = ms.Core().Tick()
	if regs := ms.Registrations(); len(regs) != 1 || regs[0].EID.Prefix != netip.MustParsePrefix("10.1.3.0/24") {
		t.Fatalf("after the first deadline: %+v", regs)
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}

	// Down past the second deadline: nothing comes back.
	clk.Add(2 * time.Minute)
	ms, err = stateEngine(t, path, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	if regs := ms.Registrations(); len(regs) != 0 {
		t.Fatalf("expired registrations resurrected: %+v", regs)
	}
	if st := ms.Stats(); st.Registrations != 0 {
		t.Fatalf("stats %+v", st.Registrations)
	}
}

// TestStateFileReplayAfterRestart: the nonces a registration accepted
// are kept with it, so a replay is refused after a restart too.
func TestStateFileReplayAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registrations.db")
	clk := newFakeClock()
	ms, err := stateEngine(t, path, clk)
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	b := registerXTR(t, ms, src, "10.1.2.0/24", xtrA, newNonce(), netip.MustParseAddr("192.0.2.1"))
	ms.Close()
	ms, err = stateEngine(t, path, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	inject(t, ms, netip.MustParseAddrPort("192.0.2.66:4342"), b)
	if st := ms.Stats(); st.RegistrationsReplayed != 1 || ms.Registrations()[0].Source != src {
		t.Fatalf("replay after restart: replayed %d, %+v", st.RegistrationsReplayed, ms.Registrations())
	}
}

// TestStateFileRefused: a file that is not a bbolt database, and a bbolt
// database of another program, are refused with an error naming the file.
func TestStateFileRefused(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("someone-else"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, tc := range []struct{ path, want string }{
		{junk, "invalid"},
		{foreign, "not an rloc registration state file"},
	} {
		ms, err := stateEngine(t, tc.path, newFakeClock())
		if err == nil {
			ms.Close()
			t.Fatalf("%s accepted", tc.path)
		}
		if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "map_server.state_file") {
			t.Fatalf("%s: error %q, want the key, the file and %q", tc.path, err, tc.want)
		}
	}
	// The foreign file is left as it was.
	db, err = bolt.Open(foreign, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("rloc")) != nil || tx.Bucket([]byte("someone-else")) == nil {
			t.Error("foreign file changed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
