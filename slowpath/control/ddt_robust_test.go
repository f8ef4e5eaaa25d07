package control

import (
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// ddtSeeds are valid DDT inputs: Map-Requests in an ECM with the D bit
// (IPv4 in and out of the authority, IPv6 in IID 7) and a signed
// Map-Referral (unsolicited: nobody asked).
func ddtSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, q := range []struct {
		iid uint32
		eid string
	}{{0, "10.1.2.3"}, {0, "10.64.0.1"}, {0, "192.168.0.1"}, {7, "2001:db8:1::1"}} {
		a := netip.MustParseAddr(q.eid)
		eid := wire.IPAddress(a)
		if q.iid != 0 {
			eid = wire.IIDAddress(q.iid, a)
		}
		req := wire.MapRequest{Nonce: wire.Nonce{1, 2}, ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: uint8(a.BitLen()), EID: eid}}}
		b, _ := req.Append(nil)
		src := lo4
		if a.Is6() {
			src = netip.IPv6Loopback()
		}
		e := wire.ECM{DDT: true, Src: src, Dst: a, SrcPort: 9, DstPort: 4342, TTL: 64, Message: b}
		eb, _ := e.Append(nil)
		seeds = append(seeds, eb)
	}
	ref, err := hex.DecodeString(goldenSignedReferral(t))
	if err != nil {
		t.Fatal(err)
	}
	return append(seeds, ref)
}

// goldenSignedReferral reads the signed Map-Referral the wire package's
// golden test uses, from the script's output kept beside it.
func goldenSignedReferral(t testing.TB) string {
	b, err := os.ReadFile("testdata/ddt_signed_referral.hex")
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:len(b)-1])
}

// TestDDTRandomInput: 20000 random mutations and truncations of DDT
// requests and of a signed Map-Referral, fed to a DDT node and to a
// Map-Server: nothing panics, bad input is counted, and both still answer
// a good DDT request afterwards.
func TestDDTRandomInput(t *testing.T) {
	node, ms := ddtNoiseEngines(t)
	seeds := ddtSeeds(t)
	rng := rand.New(rand.NewPCG(8, 111))
	for range 20000 {
		m := append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
		for range 1 + rng.IntN(4) {
			m[rng.IntN(len(m))] = byte(rng.Uint32())
		}
		m = m[:rng.IntN(len(m)+1)]
		feed(node, m)
		feed(ms, m)
	}
	for _, e := range []*Engine{node, ms} {
		st := e.Stats()
		if st.Msg(wire.TypeECM).BadParse+st.Msg(wire.TypeMapRequest).BadParse == 0 || st.Msg(wire.TypeMapReferral).Ignored == 0 {
			t.Fatalf("bad input not counted: ECM %+v, Map-Request %+v, Map-Referral %+v",
				st.Msg(wire.TypeECM), st.Msg(wire.TypeMapRequest), st.Msg(wire.TypeMapReferral))
		}
		before := st.Msg(wire.TypeMapReferral).Sent
		feed(e, seeds[0])
		if after := e.Stats().Msg(wire.TypeMapReferral).Sent; after != before+1 {
			t.Fatalf("a good DDT request after the noise: referrals sent %d -> %d", before, after)
		}
	}
}

// ddtNoiseEngines starts a DDT node and a Map-Server without rate limit
// (the noise comes from one source).
func ddtNoiseEngines(t testing.TB) (node, ms *Engine) {
	node = newEngine(t, Config{DDT: ddtTestConfig(), RateLimit: RateLimitConfig{Off: true}}, nil)
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.RateLimit.Off = true
	return node, newEngine(t, c, nil)
}

func FuzzDDTDispatch(f *testing.F) {
	for _, s := range ddtSeeds(f) {
		f.Add(s)
	}
	node, ms := ddtNoiseEngines(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		feed(node, b)
		feed(ms, b)
	})
}
