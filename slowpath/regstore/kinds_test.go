package regstore_test

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

// The kinds below are minimal versions of what the roles implement, one per
// kind of registration, so that every behaviour is shown for each.

// key is the test key type: an EID prefix, a group name's range or an
// (S,G) (src valid).
type key struct {
	iid      uint32
	src, pfx netip.Prefix
}

// kind implements regstore.Kind for one record family; V is the
// registrant's locator (or RLE entry) addresses.
type kind struct {
	name    string
	read    func(r *wire.Record) (key, bool)
	changes []int // registrant counts at each Changed
	refuse  error // Value fails with it when set
}

func (k *kind) Key(r *wire.Record) (key, bool) { return k.read(r) }

func (k *kind) Scope(x key) (uint32, netip.Prefix) { return x.iid, x.pfx }

func (k *kind) Value(_ *regstore.Entry[key, []netip.Addr], _ *regstore.Registrant[key, []netip.Addr], r *wire.Record, v *[]netip.Addr) error {
	if k.refuse != nil {
		return k.refuse
	}
	*v = addrsOf(r, (*v)[:0])
	return nil
}

// Unchanged compares the addresses, as Value reads them.
func (k *kind) Unchanged(_ *regstore.Entry[key, []netip.Addr], r *regstore.Registrant[key, []netip.Addr], rec *wire.Record) bool {
	if k.refuse != nil || len(rec.Locators) != len(r.Value) {
		return false
	}
	var buf [8]netip.Addr
	return slices.Equal(addrsOf(rec, buf[:0]), r.Value)
}

// addrsOf appends the addresses of r's locators (an RLE's entries) to v.
func addrsOf(r *wire.Record, v []netip.Addr) []netip.Addr {
	for _, l := range r.Locators {
		if nodes, ok := l.Address.RLENodes(); ok {
			for _, n := range nodes {
				v = append(v, n.Address.IP)
			}
			continue
		}
		v = append(v, l.Address.IP)
	}
	return v
}

func (k *kind) Changed(e *regstore.Entry[key, []netip.Addr]) {
	k.changes = append(k.changes, len(e.Registrants()))
}

// Confirm answers a merge request with the union of the registrants'
// locators, like the Map-Server's merged record.
func (k *kind) Confirm(e *regstore.Entry[key, []netip.Addr], r *wire.Record, reg *wire.MapRegister) wire.Record {
	if !reg.Merge || e == nil {
		return *r
	}
	m := *r
	m.Locators = nil
	for _, a := range merged(e) {
		m.Locators = append(m.Locators, wire.Locator{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(a)})
	}
	return m
}

func merged(e *regstore.Entry[key, []netip.Addr]) []netip.Addr {
	var out []netip.Addr
	for _, r := range e.Registrants() {
		out = append(out, r.Value...)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func prefixKind() *kind {
	return &kind{name: "eid-prefix", read: func(r *wire.Record) (key, bool) {
		iid, p, ok := r.Prefix()
		return key{iid: iid, pfx: p}, ok
	}}
}

func groupNameKind() *kind {
	return &kind{name: "group-name", read: func(r *wire.Record) (key, bool) {
		iid, p, err := replicate.ParseGroupNameEID(&r.EID)
		return key{iid: iid, pfx: p}, err == nil
	}}
}

func sgKind(name string) *kind {
	return &kind{name: name, read: func(r *wire.Record) (key, bool) {
		iid, s, g, ok := r.EID.SG()
		return key{iid: iid, src: s, pfx: g}, ok && g.Addr().IsMulticast()
	}}
}

// Records of each family.

func eidRecord(iid uint32, p string, ttl uint32, rlocs ...string) wire.Record {
	pf := netip.MustParsePrefix(p)
	eid := wire.IPAddress(pf.Addr())
	if iid != 0 {
		eid = wire.IIDAddress(iid, pf.Addr())
	}
	return wire.Record{TTL: ttl, MaskLen: uint8(pf.Bits()), EID: eid, Locators: locators(rlocs)}
}

func nameRecord(iid uint32, g string, ttl uint32, rlocs ...string) wire.Record {
	return wire.Record{TTL: ttl, EID: replicate.GroupRangeEID(iid, netip.MustParsePrefix(g)), Locators: locators(rlocs)}
}

func sgRecord(iid uint32, s, g string, ttl uint32, rlocs ...string) wire.Record {
	gp := netip.MustParsePrefix(g)
	r := wire.Record{TTL: ttl, MaskLen: uint8(gp.Bits()), EID: wire.SGAddress(iid, netip.MustParsePrefix(s), gp)}
	var nodes []wire.RLENode
	for _, a := range rlocs {
		nodes = append(nodes, wire.RLENode{Level: 128, Address: wire.IPAddress(netip.MustParseAddr(a))})
	}
	if len(nodes) > 0 {
		r.Locators = []wire.Locator{{Priority: 255, MPriority: 1, MWeight: 100, Reachable: true, Address: wire.RLEAddress(nodes...)}}
	}
	return r
}

func locators(rlocs []string) []wire.Locator {
	var out []wire.Locator
	for _, a := range rlocs {
		out = append(out, wire.Locator{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr(a))})
	}
	return out
}

// Keys and sites of the tests.

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keyA  = regstore.Key{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: []byte("site-a secret")}
	keyA0 = regstore.Key{KeyID: 0, Alg: wire.AuthHMACSHA1_96, Secret: []byte("site-a legacy")}
	keyB  = regstore.Key{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: []byte("site-b secret")}
	keyM  = regstore.Key{KeyID: 9, Alg: wire.AuthHMACSHA1_96, Secret: []byte("multicast key")}
	xtr1  = wire.XTRID{1}
	xtr2  = wire.XTRID{2}
	etr1  = netip.MustParseAddrPort("192.0.2.1:4342")
	etr2  = netip.MustParseAddrPort("192.0.2.2:4342")
	itr1  = netip.MustParseAddrPort("198.51.100.1:4342")
)

func pfx(iid uint32, s string) regstore.SitePrefix {
	return regstore.SitePrefix{IID: iid, Prefix: netip.MustParsePrefix(s)}
}

func more(iid uint32, s string) regstore.SitePrefix {
	p := pfx(iid, s)
	p.MoreSpecifics = true
	return p
}

func testSites(t testing.TB) *regstore.Sites {
	t.Helper()
	ss, err := regstore.NewSites([]*regstore.Site{
		{Name: "a", Keys: []regstore.Key{keyA, keyA0}, Prefixes: []regstore.SitePrefix{
			more(0, "10.0.0.0/8"), pfx(5, "192.168.1.0/24"), more(0, "239.1.0.0/16"), more(7, "ff3e::/16"),
		}},
		{Name: "b", Keys: []regstore.Key{keyB}, Prefixes: []regstore.SitePrefix{pfx(0, "10.1.0.0/16")}},
		{Name: "strict", Keys: []regstore.Key{keyA}, RequireXTRID: true, Prefixes: []regstore.SitePrefix{
			more(0, "172.16.0.0/12"), more(0, "238.0.0.0/8"),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// sink records events.
type sink struct{ evs []regstore.Event[key] }

func (s *sink) RegistrationEvent(ev *regstore.Event[key]) { s.evs = append(s.evs, *ev) }

func (s *sink) take() []regstore.Event[key] {
	out := s.evs
	s.evs = nil
	return out
}

// env is a store on a fake clock and sender.
type env struct {
	clk  *reqtest.Clock
	snd  *reqtest.Sender
	kind *kind
	sink *sink
	st   *regstore.Store[key, []netip.Addr]
}

func newEnv(t testing.TB, k *kind, sites *regstore.Sites, cfg regstore.Config) *env {
	t.Helper()
	e := &env{clk: reqtest.NewClock(t0), kind: k, sink: &sink{}}
	e.snd = &reqtest.Sender{Clock: e.clk, Port: 4342}
	if sites == nil {
		sites = testSites(t)
	}
	e.st = regstore.New(e.clk, e.snd, regstore.Kind[key, []netip.Addr](k), sites, regstore.Sink[key](e.sink), cfg)
	return e
}

// reg describes a Map-Register to send.
type reg struct {
	key     regstore.Key
	full    bool
	xtr     *wire.XTRID
	notify  bool
	merge   bool
	useTTL  bool
	records []wire.Record
	// nonce is the message's nonce; zero takes the next of nonces, so
	// that no two messages share one unless a test says so.
	nonce wire.Nonce
}

// nonces numbers the Map-Registers of the tests.
var nonces atomic.Uint64

// encode signs r and parses it back, as the core does on arrival.
func (r reg) encode(t testing.TB) ([]byte, *wire.MapRegister) {
	t.Helper()
	nonce := r.nonce
	if nonce == (wire.Nonce{}) {
		binary.BigEndian.PutUint64(nonce[:], nonces.Add(1))
	}
	m := wire.MapRegister{WantMapNotify: r.notify, Merge: r.merge, UseTTL: r.useTTL, Nonce: nonce,
		Auth: wire.NewAuth(r.key.KeyID, r.key.Alg, r.full), Records: r.records}
	if r.xtr != nil {
		m.XTRIDPresent, m.XTRID, m.SiteID = true, *r.xtr, 77
	}
	raw, err := m.AppendSigned(nil, r.key.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var p wire.MapRegister
	if err := p.Parse(raw); err != nil {
		t.Fatal(err)
	}
	return raw, &p
}

func (e *env) register(t testing.TB, src netip.AddrPort, r reg) regstore.Result {
	t.Helper()
	raw, m := r.encode(t)
	return e.st.Register(src, raw, m)
}
