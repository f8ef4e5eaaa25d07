package e2e

import (
	"crypto/rand"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

var (
	h1v4 = netip.MustParseAddr("10.1.0.10")
	h2v4 = netip.MustParseAddr("10.2.0.10")
	h2v6 = netip.MustParseAddr("2001:db8:2::10")
	nlv4 = netip.MustParseAddr("198.51.100.10")
	nlv6 = netip.MustParseAddr("2001:db8:100::10")
)

// TestNetwork runs the demo network with real daemons through its life:
// registration, resolution with held first packets, PETR/PITR, wrong keys and
// malformed floods at the Map-Server, expiry, and a Map-Server restart.
func TestNetwork(t *testing.T) {
	n := newNetwork(t)
	n.start("msmr", msmrYAML("4s"))
	n.start("pxtr", pxtrYAML)
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))

	t.Run("registration accepted and notified", func(t *testing.T) {
		n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
		for _, x := range []string{"xtr1", "xtr2"} {
			n.waitFor(5*time.Second, x+" Map-Notify", func() bool { return n.stats(x).Control["register_notified"] >= 1 })
		}
		if st := n.stats("msmr"); msgCount(st, "map-register").BadAuth != 0 {
			t.Fatalf("bad-auth registers with good keys: %+v", msgCount(st, "map-register"))
		}
	})

	t.Run("first packets held during resolution", func(t *testing.T) {
		// 5 echo requests 50 ms apart: the first ones arrive while the
		// mapping is being resolved and must be held, not lost.
		got, err := n.lab.Ping("h1", h2v4, 5, 2*time.Second)
		if err != nil || got != 5 {
			t.Fatalf("h1 -> h2: %d/5 replies, %v", got, err)
		}
		st := n.stats("xtr1")
		if st.Fastpath["held"] == 0 || st.Fastpath["released"] == 0 || st.Fastpath["encap"] < 5 {
			t.Fatalf("xtr1 counters: %v drops %v", st.Fastpath, st.Drops)
		}
		if st.Drops["hold_timeout"] != 0 || st.Drops["hold_full_eid"] != 0 {
			t.Fatalf("held packets lost: %v", st.Drops)
		}
		got, err = n.lab.Ping("h1", h2v6, 5, 2*time.Second)
		if err != nil || got != 5 {
			t.Fatalf("h1 -> h2 over IPv6: %d/5 replies, %v", got, err)
		}
	})

	t.Run("negative reply uses the PETR", func(t *testing.T) {
		for _, dst := range []netip.Addr{nlv4, nlv6} {
			got, err := n.lab.Ping("h1", dst, 3, 2*time.Second)
			if err != nil || got != 3 {
				t.Fatalf("h1 -> %v: %d/3 replies, %v", dst, got, err)
			}
		}
		neg := 0
		for _, e := range n.mapCache("xtr1") {
			if e.Negative && e.Action == "natively-forward" && netip.MustParsePrefix(e.EID).Contains(nlv4) {
				neg++
			}
		}
		if neg != 1 {
			t.Fatalf("xtr1 has no native-forward negative entry covering %v: %+v", nlv4, n.mapCache("xtr1"))
		}
		if st := n.stats("pxtr"); st.Fastpath["decap"] < 6 {
			t.Fatalf("pxtr decapsulated %d packets, want >= 6 (PETR path)", st.Fastpath["decap"])
		}
		// And back the other way through the PITR: first flows there too,
		// every echo request must come back.
		if got, err := n.lab.Ping("nl", h1v4, 5, 2*time.Second); err != nil || got != 5 {
			t.Fatalf("nl -> h1: %d/5, %v", got, err)
		}
		if got, err := n.lab.Ping("nl", h2v6, 5, 2*time.Second); err != nil || got != 5 {
			t.Fatalf("nl -> h2 over IPv6: %d/5, %v", got, err)
		}
	})

	t.Run("no first packet dropped anywhere", func(t *testing.T) {
		// Every flow so far started cold: the ITRs held the first packets
		// during resolution and the routers passed packets for neighbours
		// not yet resolved to the kernel (ARP/ND) instead of dropping them.
		kernel := uint64(0)
		for _, node := range []string{"xtr1", "xtr2", "pxtr"} {
			st := n.stats(node)
			kernel += st.Fastpath["to_kernel"]
			for _, d := range []string{"no_neighbour", "no_route", "no_port", "hold_timeout", "hold_full_eid",
				"hold_full_global", "hold_no_slot", "hold_oversize", "miss_queue_full", "tx_full"} {
				if st.Drops[d] != 0 {
					t.Errorf("%s dropped %d packets as %s (drops %v)", node, st.Drops[d], d, st.Drops)
				}
			}
			if st.Fastpath["release_queue_full"] != 0 {
				t.Errorf("%s lost %d releases", node, st.Fastpath["release_queue_full"])
			}
		}
		if kernel == 0 {
			t.Errorf("no packet took the kernel path for an unresolved neighbour: the cold start was not cold")
		}
	})

	t.Run("wrong key rejected, malformed flood survived", func(t *testing.T) {
		before := msgCount(n.stats("msmr"), "map-register")
		bad := badRegister(t, "wrong-key")
		var junk [][]byte
		for i := 0; i < 200; i++ {
			b := make([]byte, 1+i%120)
			_, _ = rand.Read(b)
			junk = append(junk, b)
		}
		err := n.lab.Node("xtr1").Do(func() error {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.100:4342")))
			if err != nil {
				return err
			}
			defer c.Close()
			for i := 0; i < 20; i++ {
				_, _ = c.Write(bad)
			}
			for _, b := range junk {
				_, _ = c.Write(b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n.waitFor(5*time.Second, "bad-auth counted", func() bool {
			return msgCount(n.stats("msmr"), "map-register").BadAuth > before.BadAuth
		})
		st := n.stats("msmr")
		for _, r := range n.registrations() {
			if slices.Contains(r.RLOCs, "192.0.2.66") {
				t.Fatalf("a Map-Register with a wrong key was stored: %+v", r)
			}
		}
		var dropped uint64
		for _, m := range st.Messages {
			dropped += m.BadParse + m.RateLimited + m.BadAuth + m.Ignored
		}
		if dropped < 20 {
			t.Fatalf("msmr counted only %d dropped messages: %+v", dropped, st.Messages)
		}
		// The daemon still serves its good peers.
		n.waitFor(5*time.Second, "registrations kept", func() bool { return len(n.registrations()) == 4 })
		if p := n.procs["msmr"]; p == nil {
			t.Fatal("msmr gone")
		} else {
			select {
			case <-p.Done():
				t.Fatalf("msmr exited: %v", p.Wait())
			default:
			}
		}
	})

	t.Run("map-server restart", func(t *testing.T) {
		n.stop("msmr", false)
		n.start("msmr", msmrYAML("4s"))
		n.waitFor(10*time.Second, "re-registration", func() bool { return len(n.registrations()) == 4 })
		// A new flow (h2 -> h1 was never resolved by xtr2) resolves again.
		if got, err := n.lab.Ping("h2", h1v4, 3, 2*time.Second); err != nil || got != 3 {
			t.Fatalf("h2 -> h1 after restart: %d/3, %v", got, err)
		}
	})

	t.Run("registrations expire when the ETR stops", func(t *testing.T) {
		n.stop("xtr2", false) // killed: no deregistration
		n.waitFor(12*time.Second, "xtr2's registrations expired", func() bool {
			for _, r := range n.registrations() {
				if r.Site == "site2" {
					return false
				}
			}
			return true
		})
		if st := n.stats("msmr"); st.Control["registrations_expired"] < 2 {
			t.Fatalf("registrations-expired = %d", st.Control["registrations_expired"])
		}
	})
}

// badRegister builds a Map-Register for site 1 signed with a wrong key.
func badRegister(t *testing.T, secret string) []byte {
	t.Helper()
	reg := wire.MapRegister{WantMapNotify: true, Nonce: wire.Nonce{0, 0, 0, 0, 0, 0, 0, 42},
		Auth: wire.Auth{KeyID: 1, Alg: wire.AuthHMACSHA256128, Data: make([]byte, wire.AuthDataLen(wire.AuthHMACSHA256128, true))},
		Records: []wire.Record{{TTL: 3, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0")),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.66"))}}}}}
	b, err := reg.AppendSigned(nil, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
