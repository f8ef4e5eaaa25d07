package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestForgedReplyRefused: a Map-Reply carrying the outstanding nonce but
// sent from an address the request could not be answered from (neither
// the Map-Resolver asked, a configured reply source, nor one of the
// reply's own locators) is refused and counted, even claiming 0.0.0.0/0,
// and the request stays open: the genuine reply is then installed. A
// reply from one of its own locators (an ETR answering from its RLOC)
// and one from a configured reply source (a proxy-replying Map-Server)
// are accepted.
func TestForgedReplyRefused(t *testing.T) {
	mr, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	mrAddr := mr.LocalAddr().(*net.UDPAddr).AddrPort()
	inst := &fakeInstaller{}
	c := itrConfig(mrAddr)
	c.RetransmitInterval = time.Minute // one request per resolution: the test answers it
	c.ReplySources = []netip.Addr{netip.MustParseAddr("127.0.0.9")}
	itr := newEngine(t, Config{ITR: c}, inst)

	// ask makes the ITR resolve eid and returns the request's nonce.
	ask := func(eid string) wire.Nonce {
		t.Helper()
		itr.Miss(MissEvent{Dst: netip.MustParseAddr(eid)})
		buf := make([]byte, 2048)
		mr.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := mr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var ecm wire.ECM
		if err := ecm.Parse(buf[:n]); err != nil {
			t.Fatal(err)
		}
		var req wire.MapRequest
		if err := req.Parse(ecm.Message); err != nil {
			t.Fatal(err)
		}
		return req.Nonce
	}
	reply := func(from string, nonce wire.Nonce, eid string, loc string) {
		t.Helper()
		p := netip.MustParsePrefix(eid)
		rep := wire.MapReply{Nonce: nonce, Records: []wire.Record{{TTL: 10, MaskLen: uint8(p.Bits()),
			EID: wire.IPAddress(p.Addr()), Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true,
				Address: wire.IPAddress(netip.MustParseAddr(loc))}}}}}
		b, _ := rep.Append(nil)
		s, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.WriteToUDPAddrPort(b, itr.Addr())
	}
	seen := func() uint64 {
		m := itr.Stats().Msg(wire.TypeMapReply)
		return m.Received
	}

	nonce := ask("10.1.2.3")
	reply("127.0.0.66", nonce, "0.0.0.0/0", "192.0.2.66") // forged: a bystander that saw the nonce
	waitFor(t, 5*time.Second, "the forged reply processed", func() bool { return seen() == 1 })
	if st := itr.Stats(); st.RepliesWrongSource != 1 || len(inst.positives()) != 0 {
		t.Fatalf("forged reply: %d refused, installed %+v", st.RepliesWrongSource, inst.positives())
	}
	reply(mrAddr.Addr().String(), nonce, "10.1.2.0/24", "192.0.2.1") // the Map-Resolver's genuine answer
	waitFor(t, 5*time.Second, "the genuine reply installed", func() bool { return len(inst.positives()) == 1 })
	if got := inst.positives()[0]; got.Prefix != netip.MustParsePrefix("10.1.2.0/24") {
		t.Fatalf("installed %+v", got)
	}

	nonce = ask("10.3.0.1")
	reply("127.0.0.7", nonce, "10.3.0.0/16", "127.0.0.7") // the ETR, from its own RLOC
	waitFor(t, 5*time.Second, "the ETR's reply installed", func() bool { return len(inst.positives()) == 2 })

	nonce = ask("10.4.0.1")
	reply("127.0.0.9", nonce, "10.4.0.0/16", "192.0.2.4") // a configured proxy-replying Map-Server
	waitFor(t, 5*time.Second, "the Map-Server's reply installed", func() bool { return len(inst.positives()) == 3 })
	if st := itr.Stats(); st.RepliesWrongSource != 1 {
		t.Fatalf("%d replies refused, want only the forged one", st.RepliesWrongSource)
	}
}

// TestNotifyFromOtherAddressRefused: a Map-Notify with a valid HMAC and
// the register's nonce confirms the registration only from the Map-Server
// it was sent to; from any other address it is ignored and counted.
func TestNotifyFromOtherAddressRefused(t *testing.T) {
	ms, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	msAddr := ms.LocalAddr().(*net.UDPAddr).AddrPort()
	ec := etrConfig(msAddr, testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	ec.RetryInterval = time.Minute
	etr := newEngine(t, Config{ETR: ec}, nil)
	buf := make([]byte, 4096)
	ms.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := ms.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var reg wire.MapRegister
	if err := reg.Parse(buf[:n]); err != nil {
		t.Fatal(err)
	}
	notify := wire.MapNotify{Nonce: reg.Nonce, Records: reg.Records, Auth: testKey.Auth()}
	b, err := notify.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.66:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.WriteToUDPAddrPort(b, etr.Addr())
	waitFor(t, 5*time.Second, "the notify from elsewhere processed", func() bool {
		return etr.Stats().Msg(wire.TypeMapNotify).Received == 1
	})
	if st := etr.Stats(); st.RegisterNotified != 0 || st.Msg(wire.TypeMapNotify).Ignored != 1 {
		t.Fatalf("notify from another address: notified %d, ignored %d", st.RegisterNotified, st.Msg(wire.TypeMapNotify).Ignored)
	}
	ms.WriteToUDPAddrPort(b, etr.Addr())
	waitFor(t, 5*time.Second, "confirmed by the Map-Server", func() bool { return etr.Stats().RegisterNotified == 1 })
}
