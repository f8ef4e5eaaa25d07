package regstore_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// BenchmarkRegisterRefresh refreshes one registrant of a key that has n
// registrants: the merge by xTR-ID is an index lookup, so the cost should
// not grow with n (the HMAC dominates). The same message is sent again
// and again, so the replay check is off (it would make every one a
// retransmission).
func BenchmarkRegisterRefresh(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("registrants=%d", n), func(b *testing.B) {
			cfg := regstore.Config{MaxRegistrants: n, ReplayWindow: -1}
			e := newEnv(b, prefixKind(), nil, cfg)
			e.st = regstore.New(e.clk, e.snd, regstore.Kind[key, []netip.Addr](e.kind), testSites(b), nil, cfg)
			rec := []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}
			for i := range n {
				x := wire.XTRID{byte(i), byte(i >> 8), 1}
				e.register(b, etr1, reg{key: keyA, xtr: &x, records: rec})
			}
			x := wire.XTRID{0, 0, 1}
			raw, m := reg{key: keyA, xtr: &x, records: rec}.encode(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				e.kind.changes = e.kind.changes[:0]
				if res := e.st.Register(etr1, raw, m); res.Accepted != 1 {
					b.Fatal(res)
				}
			}
		})
	}
}
