package control

import (
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

var (
	lo4     = netip.MustParseAddr("127.0.0.1")
	lo4Any  = netip.AddrPortFrom(lo4, 0)
	lo6Any  = netip.MustParseAddrPort("[::1]:0")
	testKey = AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "good-secret"}
	badKey  = AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "wrong-secret"}
)

// testLogger writes the engine's logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newEngine starts an engine and closes it at the end of the test.
func newEngine(t testing.TB, c Config, inst Installer) *Engine {
	t.Helper()
	return newEngineWith(t, c, inst, slowpath.Options{})
}

// newEngineWith is newEngine with the core's options (a fake clock).
func newEngineWith(t testing.TB, c Config, inst Installer, opt slowpath.Options) *Engine {
	t.Helper()
	if c.Listen == nil {
		c.Listen = []netip.AddrPort{lo4Any}
	}
	if c.Logger == nil {
		c.Logger = testLogger(t)
	}
	e, err := NewWithOptions(c, inst, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func siteConfig(name string, p string, more bool) SiteConfig {
	return SiteConfig{
		Name:     name,
		Keys:     []AuthKey{testKey},
		Prefixes: []SitePrefix{{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix(p)}, AcceptMoreSpecifics: more}},
	}
}

func mapping(p string, rlocs ...string) Mapping {
	m := Mapping{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix(p)}}
	for i, r := range rlocs {
		m.RLOCs = append(m.RLOCs, RLOCConfig{Addr: netip.MustParseAddr(r), Priority: uint8(i + 1), Weight: 100})
	}
	return m
}

// fakeInstaller records what the ITR installs.
type fakeInstaller struct {
	mu     sync.Mutex
	pos    []Resolved
	neg    []negInstall
	reach  []reachChange
	active bool
}

type negInstall struct {
	p      EIDPrefix
	ttl    time.Duration
	action wire.Action
}

type reachChange struct {
	p    EIDPrefix
	rloc netip.Addr
	up   bool
}

func (f *fakeInstaller) Install(m *Resolved) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *m
	c.RLOCs = append([]ResolvedRLOC(nil), m.RLOCs...)
	c.Record = nil
	f.pos = append(f.pos, c)
}

func (f *fakeInstaller) InstallNegative(p EIDPrefix, ttl time.Duration, a wire.Action) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.neg = append(f.neg, negInstall{p, ttl, a})
}

func (f *fakeInstaller) SetRLOCReachable(p EIDPrefix, rloc netip.Addr, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reach = append(f.reach, reachChange{p, rloc, up})
}

func (f *fakeInstaller) Active(EIDPrefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func (f *fakeInstaller) positives() []Resolved {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Resolved(nil), f.pos...)
}

func (f *fakeInstaller) negatives() []negInstall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]negInstall(nil), f.neg...)
}

func (f *fakeInstaller) reaches() []reachChange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reachChange(nil), f.reach...)
}

// fakeClock is a clock tests move by hand (slowpath.Options.Clock).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d.
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
