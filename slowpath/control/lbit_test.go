package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// roundTrip sends a message from a fresh loopback socket to dst and
// returns the first datagram that comes back to it. wrap builds the message
// once the socket's port is known (an ECM names it as its inner source
// port).
func roundTrip(t *testing.T, dst netip.AddrPort, wrap func(port uint16) []byte) []byte {
	t.Helper()
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	port := cl.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if _, err := cl.WriteToUDPAddrPort(wrap(port), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := cl.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// ask is roundTrip for a Map-Reply.
func ask(t *testing.T, dst netip.AddrPort, wrap func(port uint16) []byte) wire.MapReply {
	t.Helper()
	var rep wire.MapReply
	if err := rep.Parse(roundTrip(t, dst, wrap)); err != nil {
		t.Fatal(err)
	}
	return rep
}

func eidRequest(eid string) wire.MapRequest {
	return wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr(eid))}}}
}

// TestETRReplyMarksLocalLocators: an ETR's Map-Reply sets the L bit on the
// router's own RLOCs and on no other locator of the mapping (RFC 9301
// §5.4), and a Map-Server's proxy reply for the same mapping has no L bit
// even when the registering ETR sent one.
func TestETRReplyMarksLocalLocators(t *testing.T) {
	m := mapping("10.1.2.0/24", "192.0.2.1", "127.0.0.1")
	etr := newEngine(t, Config{ETR: &ETRConfig{Mappings: []Mapping{m}, LocalRLOCs: []netip.Addr{lo4}}}, nil)
	rep := ask(t, etr.Addr(), func(uint16) []byte {
		req := eidRequest("10.1.2.3")
		b, _ := req.Append(nil)
		return b
	})
	l := rep.Records[0].Locators
	if len(l) != 2 || l[0].Local || !l[1].Local || l[0].Probed || l[1].Probed {
		t.Fatalf("locators %+v: want L only on 127.0.0.1, no p bit", l)
	}

	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	reg := wire.MapRegister{ProxyReply: true, WantMapNotify: true, Nonce: newNonce(),
		Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false), Records: []wire.Record{rep.Records[0]}}
	msg, err := reg.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	var n wire.MapNotify
	if err := n.Parse(roundTrip(t, ms.Addr(), func(uint16) []byte { return msg })); err != nil || n.Nonce != reg.Nonce {
		t.Fatalf("no Map-Notify for the register: %v", err)
	}
	prep := ask(t, ms.Addr(), func(port uint16) []byte {
		req := eidRequest("10.1.2.3")
		b, _ := req.Append(nil)
		e := wire.ECM{Src: lo4, Dst: netip.MustParseAddr("10.1.2.3"), SrcPort: port, DstPort: 4342, TTL: 64, Message: b}
		out, _ := e.Append(nil)
		return out
	})
	if len(prep.Records) != 1 || len(prep.Records[0].Locators) != 2 {
		t.Fatalf("proxy reply %+v", prep)
	}
	for _, x := range prep.Records[0].Locators {
		if x.Local {
			t.Fatalf("proxy reply has the L bit on %v", x.Address)
		}
	}
}
