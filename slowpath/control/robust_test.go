package control

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestFloodBadKeys: one source floods bad-key Map-Registers and garbage; the
// rate limit drops most of it, counts everything, and a good ETR (another
// source address) still registers.
func TestFloodBadKeys(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.RateLimit = RateLimitConfig{MapRegister: slowpath.RateBudget{PerSource: 100, Burst: 100}}
	ms := newEngine(t, c, nil)
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reg := wire.MapRegister{WantMapNotify: true, Nonce: newNonce(), Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
		Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0")),
			Locators: []wire.Locator{{Priority: 1, Weight: 1, Address: wire.IPAddress(netip.MustParseAddr("203.0.113.66"))}}}}}
	bad, _ := reg.AppendSigned(nil, []byte(badKey.Secret))
	rng := rand.New(rand.NewPCG(3, 4))
	const flood = 3000
	for i := range flood {
		if i%3 == 0 {
			junk := make([]byte, rng.IntN(200))
			for j := range junk {
				junk[j] = byte(rng.Uint32())
			}
			cl.WriteToUDPAddrPort(junk, ms.Addr())
			continue
		}
		cl.WriteToUDPAddrPort(bad, ms.Addr())
	}
	etr := newEngine(t, Config{ETR: etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "good registration during the flood", func() bool { return etr.Stats().RegisterNotified >= 1 })
	st := ms.Stats()
	var limited, received uint64
	for _, m := range st.Msgs {
		limited += m.RateLimited
		received += m.Received
	}
	if limited == 0 || st.Msg(wire.TypeMapRegister).BadAuth == 0 {
		t.Fatalf("rate limited %d, bad auth %d", limited, st.Msg(wire.TypeMapRegister).BadAuth)
	}
	regs := ms.Registrations()
	if len(regs) != 1 || regs[0].RLOCs[0] != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("registrations %+v", regs)
	}
	t.Logf("flood: %d received, %d rate-limited, %d bad-auth, %d short", received, limited, st.Msg(wire.TypeMapRegister).BadAuth, st.Short)
}

// allRoles starts an engine with every role, for feeding it arbitrary input.
func allRoles(t testing.TB) *Engine {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	// Logs go nowhere: a fuzz target may not log through f, and its inputs
	// reach handlers that log at debug level.
	c.Logger = slog.New(slog.DiscardHandler)
	c.ETR = &ETRConfig{Mappings: []Mapping{mapping("10.1.2.0/24", "127.0.0.1")}}
	c.ITR = itrConfig(netip.MustParseAddrPort("127.0.0.1:9"))
	c.ITR.ProbeInterval = time.Millisecond
	return newEngine(t, c, &fakeInstaller{active: true})
}

// feed dispatches b on the engine goroutine.
func feed(e *Engine, b []byte) {
	_ = e.c.Inject(netip.MustParseAddrPort("127.0.0.1:9"), b)
}

func TestDispatchRandomBytes(t *testing.T) {
	e := allRoles(t)
	rng := rand.New(rand.NewPCG(5, 6))
	// Valid messages of every type, then random mutations of them.
	var seeds [][]byte
	req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	b, _ := req.Append(nil)
	seeds = append(seeds, b)
	ecm := wire.ECM{Src: lo4, Dst: netip.MustParseAddr("10.1.2.3"), SrcPort: 9, DstPort: 4342, Message: b}
	eb, _ := ecm.Append(nil)
	seeds = append(seeds, eb)
	reg := wire.MapRegister{Nonce: newNonce(), Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
		Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0"))}}}
	rb, _ := reg.AppendSigned(nil, []byte(testKey.Secret))
	seeds = append(seeds, rb)
	rep := wire.MapReply{Nonce: newNonce(), Records: reg.Records}
	pb, _ := rep.Append(nil)
	seeds = append(seeds, pb)
	for i := range 20000 {
		var m []byte
		if i%2 == 0 {
			m = make([]byte, rng.IntN(120))
			for j := range m {
				m[j] = byte(rng.Uint32())
			}
		} else {
			m = append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
			for range 1 + rng.IntN(4) {
				if len(m) > 0 {
					m[rng.IntN(len(m))] = byte(rng.Uint32())
				}
			}
			m = m[:rng.IntN(len(m)+1)]
		}
		feed(e, m)
	}
	st := e.Stats()
	var parse uint64
	for _, m := range st.Msgs {
		parse += m.BadParse
	}
	if parse == 0 {
		t.Fatal("no parse errors counted for 20000 random inputs")
	}
}

func FuzzDispatch(f *testing.F) {
	req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	b, _ := req.Append(nil)
	f.Add(b)
	ecm := wire.ECM{Src: lo4, Dst: netip.MustParseAddr("10.1.2.3"), SrcPort: 9, DstPort: 4342, Message: b}
	eb, _ := ecm.Append(nil)
	f.Add(eb)
	// With LISP-SEC data: an ITR's (OTK unwrapped) and a Map-Server's
	// (EID-AD for the ETR), so that the roles' LISP-SEC paths are fuzzed.
	ecm.Security = true
	ecm.Auth = wire.ECMAuth{Type: wire.ECMADLispSec, HMAC: wire.SecHMACSHA256128, EID: wire.EIDAuth{Short: true, KDF: wire.SecKDFSHA256}}
	_ = wire.WrapOTK(&ecm.Auth, wire.SecWrapNullKey128, [wire.OTKLen]byte{1}, nil, req.Nonce)
	eb, _ = ecm.Append(nil)
	f.Add(eb)
	ecm.ToETR, ecm.Auth.EID = true, wire.EIDAuth{KDF: wire.SecKDFSHA256, HMAC: wire.SecHMACSHA256128, MAC: make([]byte, 16),
		Records: []wire.EIDRecord{{MaskLen: 16, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0"))}}}
	eb, _ = ecm.Append(nil)
	f.Add(eb)
	e := allRoles(f)
	f.Fuzz(func(t *testing.T, b []byte) { feed(e, b) })
}

func TestConfigErrorsNameTheField(t *testing.T) {
	good := func() Config { return msConfig(siteConfig("a", "10.1.0.0/16", true)) }
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"roles", func(c *Config) { *c = Config{} }},
		{"map_server.sites[0].keys[0].secret", func(c *Config) { c.MapServer.Sites[0].Keys[0].Secret = "" }},
		{"map_server.sites[0].keys[0].alg", func(c *Config) { c.MapServer.Sites[0].Keys[0].Alg = 9 }},
		{"map_server.sites[0].prefixes[0].eid", func(c *Config) {
			c.MapServer.Sites[0].Prefixes[0].Prefix = netip.MustParsePrefix("10.1.2.3/16")
		}},
		{"map_server.sites[1].name", func(c *Config) { c.MapServer.Sites = append(c.MapServer.Sites, c.MapServer.Sites[0]) }},
		{"listen[1]", func(c *Config) { c.Listen = []netip.AddrPort{lo4Any, lo4Any} }},
		{"etr.mappings[0].rlocs", func(c *Config) {
			c.ETR = &ETRConfig{Mappings: []Mapping{{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}}
		}},
		{"itr.map_resolvers", func(c *Config) { c.ITR = &ITRConfig{ITRRLOCs: []netip.Addr{lo4}} }},
		{"itr.itr_rlocs", func(c *Config) { c.ITR = &ITRConfig{MapResolvers: []netip.AddrPort{lo4Any}} }},
		{"etr.map_servers[0].key.secret", func(c *Config) {
			c.ETR = &ETRConfig{Mappings: []Mapping{mapping("10.0.0.0/8", "192.0.2.1")}, MapServers: []MapServerPeer{{Addr: lo4Any, Key: AuthKey{Alg: 2}}}}
		}},
	}
	for _, tc := range cases {
		c := good()
		tc.mod(&c)
		_, err := New(c, nil)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
}

// TestSpoofedFloodLimitedByDefault: with no rate-limit configuration, 200
// source addresses each sending 20 Map-Requests for the ETR's EID (replies
// go to whatever ITR-RLOC the request names: a reflection attack) get no
// more than the xTR's total Map-Request budget answered (a burst of 1000
// while the clock stands still); each source stays within its own budget,
// so the total is what holds; every refusal is counted.
func TestSpoofedFloodLimitedByDefault(t *testing.T) {
	clk := newFakeClock()
	etr := newEngineWith(t, Config{ETR: &ETRConfig{Mappings: []Mapping{mapping("10.1.2.0/24", "192.0.2.1")}}}, nil,
		slowpath.Options{Clock: clk.Now})
	req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	msg, _ := req.Append(nil)
	const sources, each = 200, 20
	processed := func() uint64 {
		m := etr.Stats().Msg(wire.TypeMapRequest)
		return m.Received + m.RateLimited
	}
	for i := range sources {
		src := netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			t.Fatal(err)
		}
		for range each {
			c.WriteToUDPAddrPort(msg, etr.Addr())
		}
		c.Close()
		// One source at a time, so no datagram is lost to a full socket
		// buffer and the counts are exact.
		waitFor(t, 5*time.Second, "the source's requests processed", func() bool { return processed() == uint64((i+1)*each) })
	}
	st := etr.Stats()
	m := st.Msg(wire.TypeMapRequest)
	if m.Received != 1000 || m.RateLimited != sources*each-1000 {
		t.Errorf("received %d, rate-limited %d; want the total burst 1000 and the rest %d", m.Received, m.RateLimited, sources*each-1000)
	}
	if st.RateLimitedTotal != sources*each-1000 || st.RateLimitedSource != 0 {
		t.Errorf("refused by the total %d, by a source's budget %d", st.RateLimitedTotal, st.RateLimitedSource)
	}
	if sent := st.Msg(wire.TypeMapReply).Sent; sent != 1000 {
		t.Errorf("%d Map-Replies reflected, want 1000", sent)
	}
	// Time passing refills the total at 1000/s.
	clk.Add(100 * time.Millisecond)
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.2.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 150 {
		c.WriteToUDPAddrPort(msg, etr.Addr())
	}
	waitFor(t, 5*time.Second, "the last requests processed", func() bool { return processed() == sources*each+150 })
	if got := etr.Stats().Msg(wire.TypeMapRequest).Received; got != 1100 {
		t.Errorf("after 100 ms: %d received in all, want 1100", got)
	}
}
