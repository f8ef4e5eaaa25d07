package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// TestPubSub: RFC 9437 publish/subscribe between real daemons. xtr1's ITR
// subscribes to the mappings it resolves; xtr2 registers with proxy reply
// (so its ETR sees no request and sends no SMR) and a 24-hour TTL (so no
// TTL refresh happens during the test). When xtr2's RLOC set changes
// (SIGHUP) and when it withdraws (graceful stop, TTL-0 registration),
// xtr1's map-cache follows through the Map-Server's Map-Notify. A
// Map-Server restart makes xtr1 subscribe again. The pxtr subscribes as a
// configured subscriber but with the wrong key: it installs nothing from
// the Map-Notifies; after the restart it is no longer configured: its
// subscription is refused and it is sent nothing.
func TestPubSub(t *testing.T) {
	n := newNetwork(t)
	ms := strings.Replace(msmrYAML("30s"), "map_server: {registration_timeout: 30s}",
		"map_server: {registration_timeout: 30s, pubsub: {notify_interval: 200ms, subscribers: [{name: pxtr, key: {id: 1, secret: pxtr-ms}}]}}", 1)
	n.start("msmr", ms)
	x2 := strings.Replace(xtrYAML("xtr2", "2", "key-two", "0s"), "etr: {register_interval: 1s}",
		"etr: {register_interval: 1s, proxy_reply: true, deregister_on_stop: true}", 1)
	n.start("xtr2", x2)
	n.start("xtr1", strings.Replace(xtrYAML("xtr1", "1", "key-one", "0s"), "retransmit_interval: 200ms}",
		"retransmit_interval: 200ms, subscribe: {enabled: true, resubscribe: 2s}}", 1))
	n.start("pxtr", pxtrYAML+"itr: {subscribe: {enabled: true, keys: [{id: 1, secret: wrong}]}}\n")
	n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })

	subscribed := func(xtr string) bool {
		var s router.SubscriptionsInfo
		if err := n.get("msmr", "/v1/subscriptions", &s); err != nil {
			t.Fatalf("msmr subscriptions: %v", err)
		}
		for _, e := range s.Subscriptions {
			if e.XTRID == xtr && e.EID == "10.2.0.0/24" {
				return true
			}
		}
		return false
	}
	rlocs := func(node string) []string {
		for _, e := range n.mapCache(node) {
			if e.EID == "10.2.0.0/24" && !e.Negative {
				var out []string
				for _, r := range e.RLOCs {
					out = append(out, r.Addr)
				}
				slices.Sort(out)
				return out
			}
		}
		return nil
	}
	itrCounters := func(node string) map[string]uint64 {
		var s router.SubscriptionsInfo
		if err := n.get(node, "/v1/subscriptions", &s); err != nil {
			t.Fatalf("%s subscriptions: %v", node, err)
		}
		return s.ITR
	}
	both := []string{"192.0.2.2", "2001:db8:ff::2"}

	if got, err := n.lab.Ping("h1", h2v4, 3, 2*time.Second); err != nil || got < 2 {
		t.Fatalf("h1 -> h2: %d/3, %v", got, err)
	}
	if got, err := n.lab.Ping("nl", h2v4, 3, 2*time.Second); err != nil || got < 2 {
		t.Fatalf("nl -> h2: %d/3, %v", got, err)
	}
	x1id, pxid := xtrIDOf("xtr1"), xtrIDOf("pxtr")
	n.waitFor(5*time.Second, "xtr1's subscription", func() bool { return subscribed(x1id) })
	n.waitFor(5*time.Second, "pxtr's badly signed Map-Notify refused", func() bool { return itrCounters("pxtr")["bad_auth"] >= 1 })
	if !slices.Equal(rlocs("xtr1"), both) || !slices.Equal(rlocs("pxtr"), both) {
		t.Fatalf("before the change: xtr1 %v, pxtr %v", rlocs("xtr1"), rlocs("pxtr"))
	}

	t.Run("RLOC set change", func(t *testing.T) {
		changed := strings.Replace(x2, `, {addr: "2001:db8:ff::2", priority: 2}]}
  - {eid: "2001:db8:2::/64"`, `]}
  - {eid: "2001:db8:2::/64"`, 1)
		if changed == x2 {
			t.Fatal("could not edit xtr2's configuration")
		}
		n.rewrite("xtr2", changed)
		start := time.Now()
		n.signal("xtr2", syscall.SIGHUP)
		n.waitFor(3*time.Second, "xtr1's map-cache to follow", func() bool { return slices.Equal(rlocs("xtr1"), []string{"192.0.2.2"}) })
		t.Logf("xtr1's map-cache followed %v after the SIGHUP (polled every 50 ms)", time.Since(start).Round(time.Millisecond))
		if c := itrCounters("xtr1"); c["notifies"] < 2 || c["bad_auth"] != 0 {
			t.Errorf("xtr1 subscribe counters %v", c)
		}
		if s := n.stats("xtr1"); s.Control["smr_invoked"] != 0 {
			t.Errorf("xtr1 made %d SMR-invoked requests", s.Control["smr_invoked"])
		}
		if got := rlocs("pxtr"); !slices.Equal(got, both) {
			t.Errorf("pxtr (wrong key) installed %v from a Map-Notify", got)
		}
	})

	t.Run("Map-Server restart", func(t *testing.T) {
		// Restarted without the pxtr among its subscribers.
		n.stop("msmr", false)
		n.start("msmr", msmrYAML("30s"))
		if subscribed(x1id) {
			t.Fatal("a fresh Map-Server has subscriptions")
		}
		// Keep the mapping in use, then wait for the renewal (2 s).
		if got, err := n.lab.Ping("h1", h2v4, 2, 2*time.Second); err != nil || got < 1 {
			t.Fatalf("h1 -> h2: %d/2, %v", got, err)
		}
		n.waitFor(10*time.Second, "xtr1 to subscribe again", func() bool { return subscribed(x1id) })
		// The pxtr resolves again: neither registered nor configured, its
		// subscription is refused and it is sent nothing.
		if err := n.do("pxtr", "DELETE", "/v1/map-cache?iid=0&eid=10.2.0.0/24", nil, nil); err != nil {
			t.Fatal(err)
		}
		before := itrCounters("pxtr")
		if got, err := n.lab.Ping("nl", h2v4, 3, 2*time.Second); err != nil || got < 1 {
			t.Fatalf("nl -> h2: %d/3, %v", got, err)
		}
		n.waitFor(5*time.Second, "pxtr's subscription refused", func() bool {
			var s router.SubscriptionsInfo
			return n.get("msmr", "/v1/subscriptions", &s) == nil && s.MapServer["refused"] >= 1
		})
		if subscribed(pxid) {
			t.Error("msmr keeps a subscription of the unauthorised pxtr")
		}
		if after := itrCounters("pxtr"); after["bad_auth"] != before["bad_auth"] || after["notifies"] != 0 || after["requests"] <= before["requests"] {
			t.Errorf("pxtr counters %v -> %v: want a new subscribing request and no Map-Notify", before, after)
		}
	})

	t.Run("withdrawal", func(t *testing.T) {
		start := time.Now()
		n.stop("xtr2", true) // deregister_on_stop: TTL-0 registration
		n.waitFor(3*time.Second, "xtr1's map-cache to drop 10.2.0.0/24", func() bool {
			for _, e := range n.mapCache("xtr1") {
				if e.EID == "10.2.0.0/24" {
					return e.Negative && e.Action == "send-map-request"
				}
			}
			return false
		})
		t.Logf("xtr1's map-cache followed the withdrawal %v after the stop", time.Since(start).Round(time.Millisecond))
		if c := itrCounters("xtr1"); c["withdrawals"] < 1 {
			t.Errorf("xtr1 subscribe counters %v", c)
		}
	})
}

// xtrIDOf is the xTR-ID rlocd derives from a router name, as
// /v1/subscriptions shows it.
func xtrIDOf(name string) string { return router.XTRIDOf(name).String() }

// BenchmarkMappingChange measures on the demo lab, with real daemons, the
// time from an ETR's change of an RLOC set (POST /v1/database on xtr2, which
// registers at once) to the ITR xtr1 installing it (the time of xtr1's
// mapping-installed event; one clock for the test and the daemons): with
// subscription (xtr2 registers with proxy reply, msmr pushes a Map-Notify)
// and with SMR (msmr forwards the requests to xtr2, whose change solicits
// xtr1). With proxy reply and no subscription xtr1 would learn it only at
// the TTL (24 hours here). Changes are 1.1 s apart (so ns/op is not the
// latency: the reported metrics are). Run:
// go test -run '^$' -bench MappingChange -benchtime 20x ./e2e
func BenchmarkMappingChange(b *testing.B) {
	for _, mode := range []string{"pubsub", "smr"} {
		b.Run(mode, func(b *testing.B) {
			n := newNetworkB(b)
			n.start("msmr", msmrYAML("30s"))
			x2 := xtrYAML("xtr2", "2", "key-two", "0s")
			x1 := xtrYAML("xtr1", "1", "key-one", "0s")
			if mode == "pubsub" {
				x2 = strings.Replace(x2, "etr: {register_interval: 1s}", "etr: {register_interval: 1s, proxy_reply: true}", 1)
				x1 = strings.Replace(x1, "retransmit_interval: 200ms}", "retransmit_interval: 200ms, subscribe: {enabled: true}}", 1)
			}
			n.start("xtr2", x2)
			n.start("xtr1", x1)
			n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
			if got, err := n.lab.Ping("h1", h2v4, 2, 2*time.Second); err != nil || got < 1 {
				b.Fatalf("h1 -> h2: %d/2, %v", got, err)
			}
			installs := n.events("xtr1", router.EventMappingInstalled)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				d := router.DatabaseMapping{EID: "10.2.0.0/24", RLOCs: []router.RLOCInfo{{Addr: "192.0.2.2", Priority: 1, Weight: 100}}}
				if i%2 == 1 {
					d.RLOCs = append(d.RLOCs, router.RLOCInfo{Addr: "2001:db8:ff::2", Priority: 2, Weight: 100})
				}
				// The ITR takes one SMR per EID and second (its minimum
				// request interval); Map-Notifies have no such limit. The
				// changes are spaced for SMR in both modes.
				time.Sleep(1100 * time.Millisecond)
				t0 := time.Now()
				if err := n.do("xtr2", "POST", "/v1/database", d, nil); err != nil {
					b.Fatal(err)
				}
				deadline := time.After(3 * time.Second)
			wait:
				for {
					select {
					case ev := <-installs:
						if ev.EID == "10.2.0.0/24" && len(ev.RLOCs) == len(d.RLOCs) && !ev.Time.Before(t0) {
							lat = append(lat, ev.Time.Sub(t0))
							break wait
						}
					case <-deadline:
						b.Fatalf("%s: change %d not installed at xtr1 within 3 s", mode, i)
					}
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms/change")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms/change")
			if s := n.stats("xtr1"); mode == "pubsub" && s.Control["smr_invoked"] != 0 {
				b.Errorf("pubsub: xtr1 made %d SMR-invoked requests", s.Control["smr_invoked"])
			}
		})
	}
}

// events streams node's events of kind until the test ends.
func (n *network) events(node, kind string) <-chan router.Event {
	n.t.Helper()
	c := n.client(node)
	c.Timeout = 0
	resp, err := c.Get("http://rlocd/v1/events")
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan router.Event, 64)
	go func() {
		dec := json.NewDecoder(resp.Body)
		for {
			var ev router.Event
			if dec.Decode(&ev) != nil {
				return
			}
			if ev.Kind == kind {
				select {
				case ch <- ev:
				default: // the benchmark reads one per change
				}
			}
		}
	}()
	return ch
}
