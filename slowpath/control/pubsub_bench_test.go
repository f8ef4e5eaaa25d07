package control

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// chanInstaller hands each installed mapping's first RLOC to a channel.
type chanInstaller struct{ ch chan netip.Addr }

func (c chanInstaller) Install(m *Resolved) {
	if len(m.RLOCs) > 0 {
		c.ch <- m.RLOCs[0].Addr
	}
}
func (chanInstaller) InstallNegative(EIDPrefix, time.Duration, wire.Action) {}
func (chanInstaller) SetRLOCReachable(EIDPrefix, netip.Addr, bool)          {}
func (chanInstaller) Active(EIDPrefix) bool                                 { return true }

// BenchmarkMappingChangePropagation measures, on loopback, the time from
// an ETR's new registration (a changed RLOC set, Engine.SetMappings) to the
// ITR's map-cache holding it: with RFC 9437 subscription (the Map-Server
// proxy-replies and pushes a Map-Notify) and with SMR (the Map-Server
// forwards the requests, the ETR solicits the ITR, which asks again). A
// TTL-driven refresh is not measured: it takes up to the record TTL
// (1 minute at the least, RFC 9301 §5.4), i.e. 10^4 to 10^5 times longer.
func BenchmarkMappingChangePropagation(b *testing.B) {
	for _, mode := range []string{"pubsub", "smr"} {
		b.Run(mode, func(b *testing.B) {
			c := msConfig(siteConfig("a", "10.1.0.0/16", true))
			c.Logger = slog.New(slog.DiscardHandler)
			c.MapServer.PubSub.Subscribers = []slowpath.SubscriberConfig{{XTRID: xtrA, Key: testKey}}
			ms := newEngine(b, c, nil)
			ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
			ec.ProxyReply = mode == "pubsub"
			etr := newEngine(b, Config{ETR: ec, Logger: slog.New(slog.DiscardHandler)}, nil)
			for etr.Stats().RegisterNotified == 0 {
				time.Sleep(time.Millisecond)
			}
			ic := itrConfig(ms.Addr())
			ic.MinRequestInterval = time.Microsecond
			if mode == "pubsub" {
				ic.Subscribe = subscribeConfig()
			}
			inst := chanInstaller{ch: make(chan netip.Addr, 64)}
			itr := newEngine(b, Config{ITR: ic, Logger: slog.New(slog.DiscardHandler)}, inst)
			itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
			wait := func(want netip.Addr) {
				deadline := time.After(5 * time.Second)
				for {
					select {
					case a := <-inst.ch:
						if a == want {
							return
						}
					case <-deadline:
						b.Fatalf("%s: %v not installed within 5 s", mode, want)
					}
				}
			}
			wait(netip.MustParseAddr("192.0.2.1"))
			sent := func() (n uint64) {
				for _, e := range []*Engine{ms, etr, itr} {
					st := e.Stats()
					for i := range st.Msgs {
						n += st.Msgs[i].Sent
					}
				}
				return n
			}
			lat := make([]time.Duration, 0, b.N)
			sent0 := sent()
			b.ResetTimer()
			for i := range b.N {
				rloc := fmt.Sprintf("192.0.2.%d", 2+i%250)
				t0 := time.Now()
				if err := etr.SetMappings([]Mapping{mapping("10.1.2.0/24", rloc)}); err != nil {
					b.Fatal(err)
				}
				wait(netip.MustParseAddr(rloc))
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			// Periodic registers (once a minute) fall outside a run.
			b.ReportMetric(float64(sent()-sent0)/float64(b.N), "msgs/change")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs/change")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs/change")
		})
	}
}
