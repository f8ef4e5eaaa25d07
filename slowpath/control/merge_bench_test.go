package control

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// mergeRegister encodes a Map-Register of 10.1.2.0/24 by xTR-ID x with
// RLOC rloc and nonce n; ttl 0 withdraws.
func mergeRegister(b *testing.B, x wire.XTRID, rloc netip.Addr, n uint64, ttl uint32) []byte {
	rec := wire.Record{TTL: ttl, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0"))}
	if ttl > 0 {
		rec.Locators = []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(rloc)}}
	}
	reg := wire.MapRegister{ProxyReply: true, Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false),
		XTRIDPresent: true, XTRID: x, Records: []wire.Record{rec}}
	binary.BigEndian.PutUint64(reg.Nonce[:], n)
	m, err := reg.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkRegistrantMerge measures one Map-Register for a prefix that
// has n registrants, each with its own RLOC, through the Map-Server's
// dispatch (HMAC included): a refresh that changes nothing, a refresh
// that moves the registrant to another RLOC (the merged answer is rebuilt),
// and a withdrawal then registration again (a registrant leaves and comes,
// as at expiry). The refresh should cost the same at every n; the others
// grow with n once (a rebuild of the merged answer), never with n².
func BenchmarkRegistrantMerge(b *testing.B) {
	const pool = 16 // distinct nonces cycled: more than the replay window
	for _, n := range []int{10, 100, 1000} {
		c := msConfig(siteConfig("a", "10.1.0.0/16", true))
		c.RateLimit = RateLimitConfig{Off: true}
		c.Logger = nil
		// Beyond the configurable 255 (which the router's validation
		// enforces), to show the growth; the merged answer then carries
		// the first 255 RLOCs.
		c.MapServer.Limits = RegistrationLimits{RegistrantsPerPrefix: n + 1}
		ms := newEngine(b, c, nil)
		src := netip.MustParseAddrPort("192.0.2.1:4342")
		x := func(i int) wire.XTRID { var x wire.XTRID; binary.BigEndian.PutUint32(x[:], uint32(i+1)); return x }
		rl := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}) }
		for i := range n {
			_ = ms.Core().Inject(src, mergeRegister(b, x(i), rl(i), uint64(1<<40+i), 10))
		}
		if got := len(ms.Registrations()); got != n {
			b.Fatalf("%d registrants, want %d", got, n)
		}
		var nonce uint64 = 1 << 50
		msgs := func(f func(k int) []byte) [][]byte {
			out := make([][]byte, pool)
			for k := range out {
				out[k] = f(k)
			}
			return out
		}
		run := func(name string, seq [][]byte) {
			b.Run(fmt.Sprintf("%s/registrants=%d", name, n), func(b *testing.B) {
				core := ms.Core()
				b.ReportAllocs()
				i := 0
				_ = core.Do(func() {
					b.ResetTimer()
					for range b.N {
						core.Dispatch(src, seq[i%len(seq)])
						i++
					}
					b.StopTimer()
					core.Flush()
				})
				b.ReportMetric(float64(n), "registrants")
			})
		}
		run("refresh", msgs(func(k int) []byte { nonce++; return mergeRegister(b, x(0), rl(0), nonce, 10) }))
		run("change", msgs(func(k int) []byte { nonce++; return mergeRegister(b, x(0), rl(k%2+n), nonce, 10) }))
		run("leave-and-come", msgs(func(k int) []byte {
			nonce++
			if k%2 == 0 {
				return mergeRegister(b, x(0), rl(0), nonce, 0)
			}
			return mergeRegister(b, x(0), rl(0), nonce, 10)
		}))
		if got := len(ms.Registrations()); got != n {
			b.Fatalf("after the benchmark: %d registrants, want %d", got, n)
		}
	}
}
