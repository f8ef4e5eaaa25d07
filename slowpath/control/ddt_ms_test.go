package control

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// read returns the next datagram the client receives and its type.
func (c *ddtClient) read() (wire.MessageType, []byte) {
	c.t.Helper()
	buf := make([]byte, 9216)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("nothing received: %v", err)
	}
	typ, err := wire.PeekType(buf[:n])
	if err != nil {
		c.t.Fatal(err)
	}
	return typ, buf[:n]
}

// TestDDTMapServer: a Map-Server asked by a DDT Map-Resolver (ECM with the
// D bit, RFC 8111 §7.2) answers a registered EID as always (here the
// ETR's proxy Map-Reply to the ITR-RLOC; without proxy the request reaches
// the ETR, which answers) and sends the resolver an MS-ACK for the
// registered prefix; an unregistered EID inside the site's prefix gets
// MS-NOT-REGISTERED for the least-specific prefix covering no
// registration; an EID outside every site NOT-AUTHORITATIVE.
func TestDDTMapServer(t *testing.T) {
	for _, proxy := range []bool{true, false} {
		name := "forwarded to the ETR"
		if proxy {
			name = "proxy reply"
		}
		t.Run(name, func(t *testing.T) {
			ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
			ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
			ec.ProxyReply = proxy
			etr := newEngine(t, Config{ETR: ec}, nil)
			waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
			c := newDDTClient(t, ms)

			nonce, req := c.request(0, "10.1.2.9")
			c.send(c.ecm(req, netip.MustParseAddr("10.1.2.9"), true))
			var gotReply, gotAck bool
			for range 2 {
				typ, b := c.read()
				switch typ {
				case wire.TypeMapReply:
					var rep wire.MapReply
					if err := rep.Parse(b); err != nil || rep.Nonce != nonce || len(rep.Records[0].Locators) != 1 ||
						rep.Records[0].Locators[0].Address.IP != netip.MustParseAddr("192.0.2.1") {
						t.Fatalf("Map-Reply %+v: %v", rep, err)
					}
					gotReply = true
				case wire.TypeMapReferral:
					var m wire.MapReferral
					if err := m.Parse(b); err != nil || m.Nonce != nonce {
						t.Fatalf("Map-Referral %+v: %v", m, err)
					}
					checkReferral(t, &m, wantReferral{wire.ReferralMSAck, 0, "10.1.2.0/24", 1440, true, true, nil, nil})
					gotAck = true
				default:
					t.Fatalf("unexpected %v", typ)
				}
			}
			if !gotReply || !gotAck {
				t.Fatalf("Map-Reply %v, MS-ACK %v", gotReply, gotAck)
			}
			if st := ms.Stats(); (st.ProxyReplies == 1) != proxy || (st.Forwarded == 1) == proxy {
				t.Fatalf("proxy replies %d, forwarded %d", st.ProxyReplies, st.Forwarded)
			}

			checkReferral(t, c.ask(0, "10.1.200.1"), wantReferral{wire.ReferralMSNotRegistered, 0, "10.1.128.0/17", 1, true, true, nil, nil})
			checkReferral(t, c.ask(0, "192.168.0.1"), wantReferral{wire.ReferralNotAuthoritative, 0, "192.168.0.1/32", 1, false, true, nil, nil})
			// A request without the D bit is answered as before: a negative
			// Map-Reply, no referral.
			nonce, req = c.request(0, "10.1.200.1")
			c.send(c.ecm(req, netip.MustParseAddr("10.1.200.1"), false))
			typ, b := c.read()
			var rep wire.MapReply
			if typ != wire.TypeMapReply || rep.Parse(b) != nil || rep.Nonce != nonce || len(rep.Records[0].Locators) != 0 {
				t.Fatalf("ECM without the D bit answered with %v %+v", typ, rep)
			}
			if s := ms.Stats().Msg(wire.TypeMapReferral); s.Sent != 3 {
				t.Fatalf("Map-Referrals sent %d, want 3", s.Sent)
			}
		})
	}
}

// TestDDTNodeWithMapServer: on a router that is both a DDT node and a
// Map-Server, the node answers the DDT requests inside its authority and
// leaves the others to the Map-Server (MS-NOT-REGISTERED for its site's
// space, NOT-AUTHORITATIVE outside everything).
func TestDDTNodeWithMapServer(t *testing.T) {
	cfg := msConfig(siteConfig("a", "172.16.0.0/16", true))
	cfg.DDT = ddtTestConfig()
	e := newEngine(t, cfg, nil)
	c := newDDTClient(t, e)
	checkReferral(t, c.ask(0, "10.1.2.3"), wantReferral{wire.ReferralNode, 0, "10.1.0.0/16", 120, true, false,
		[]string{"192.0.2.1", "192.0.2.2"}, []uint8{1, 2}})
	checkReferral(t, c.ask(0, "172.16.9.9"), wantReferral{wire.ReferralMSNotRegistered, 0, "172.16.0.0/16", 1, true, true, nil, nil})
	checkReferral(t, c.ask(0, "192.168.1.1"), wantReferral{wire.ReferralNotAuthoritative, 0, "192.168.1.1/32", 1, false, true, nil, nil})
	if l, _ := e.DDTDelegations(); l.Stats.NodeReferrals != 1 || l.Stats.NotAuthoritative != 0 {
		t.Fatalf("the DDT node answered %+v", l.Stats)
	}
}
