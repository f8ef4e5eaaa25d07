package slowpath_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestBatchMixedAnsweredAndCounted: datagrams queued on the core's socket
// before it starts arrive in one receive batch: Map-Requests in ECMs whose
// answers go to 20 distinct destinations (addresses and ports), plain
// Map-Requests answered to the sender, and every kind of bad datagram.
// Each good request is answered once at the right place, each bad one is
// counted where it belongs, and the batch's answers are all counted sent.
func TestBatchMixedAnsweredAndCounted(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	c, err := slowpath.NewCore(&slowpath.Config{Listen: []netip.AddrPort{netip.AddrPortFrom(lo, 0)},
		RateLimit: slowpath.RateLimitConfig{Off: true}}, slowpath.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	answer := func(m *slowpath.Msg) bool {
		b := slowpath.AppendReplyHeader(nil, m.Request.Nonce)
		if err := c.Send(c.ReplyTarget(m.Request.ITRRLOCs, m.Port, m.Src), b, wire.TypeMapReply); err != nil {
			t.Errorf("send: %v", err)
		}
		return true
	}
	c.Handle(slowpath.RouteMapRequest, answer)
	c.Handle(slowpath.RouteECM, answer)

	listen := func(a netip.Addr) *net.UDPConn {
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	client := listen(lo)
	request := func(itr netip.Addr, nonce byte) []byte {
		req := wire.MapRequest{Nonce: wire.Nonce{7, nonce}, ITRRLOCs: []wire.Address{wire.IPAddress(itr)},
			Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.0.0.1"))}}}
		b, err := req.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var dgrams [][]byte
	// Answers to 20 destinations: 127.0.0.10..29, each its own port.
	const dests = 20
	var rcv []*net.UDPConn
	for i := range dests {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)})
		r := listen(a)
		rcv = append(rcv, r)
		port := r.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		e := wire.ECM{Src: a, Dst: netip.MustParseAddr("10.0.0.1"), SrcPort: port, DstPort: wire.ControlPort, TTL: 64,
			Message: request(a, byte(i))}
		b, err := e.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		dgrams = append(dgrams, b)
	}
	// Plain requests, answered to the client's port.
	const plain = 4
	for i := range plain {
		dgrams = append(dgrams, request(lo, byte(100+i)))
	}
	good := request(lo, 200)
	ecm, _ := (&wire.ECM{Src: lo, Dst: lo, SrcPort: 1, DstPort: wire.ControlPort, TTL: 64, Message: good}).Append(nil)
	dgrams = append(dgrams,
		nil,                   // empty: short
		good[:9],              // a Map-Request cut short: bad parse
		ecm[:6],               // an ECM cut short: bad parse
		make([]byte, 10000),   // longer than the receive buffer: oversize (type 0)
		[]byte{0x00, 1, 2, 3}, // reserved type 0: ignored
		[]byte{0x20, 0, 0, 0}) // a Map-Reply nobody handles: ignored
	if len(dgrams) > 64 {
		t.Fatalf("%d datagrams do not fit one receive batch", len(dgrams))
	}
	for _, d := range dgrams {
		if _, err := client.WriteToUDPAddrPort(d, c.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	c.Start()

	buf := make([]byte, 2048)
	readNonce := func(conn *net.UDPConn) wire.Nonce {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no answer at %v: %v", conn.LocalAddr(), err)
		}
		nonce, ok := slowpath.PeekNonce(buf[:n])
		if !ok || buf[0]>>4 != byte(wire.TypeMapReply) {
			t.Fatalf("answer at %v: % x", conn.LocalAddr(), buf[:n])
		}
		return nonce
	}
	for i, r := range rcv {
		if got := readNonce(r); got != (wire.Nonce{7, byte(i)}) {
			t.Errorf("destination %d got the answer to nonce %x", i, got)
		}
	}
	seen := map[wire.Nonce]bool{}
	for range plain {
		seen[readNonce(client)] = true
	}
	for i := range plain {
		if !seen[wire.Nonce{7, byte(100 + i)}] {
			t.Errorf("plain request %d not answered (answers %v)", i, seen)
		}
	}

	st := c.Stats()
	req, ecmSt, rep := st.Msgs[wire.TypeMapRequest], st.Msgs[wire.TypeECM], st.Msgs[wire.TypeMapReply]
	checks := []struct {
		what      string
		got, want uint64
	}{
		{"Map-Requests received (plain and in ECMs)", req.Received, dests + plain + 1},
		{"Map-Requests badly formed", req.BadParse, 1},
		{"ECMs received", ecmSt.Received, dests + 1},
		{"ECMs badly formed", ecmSt.BadParse, 1},
		{"Map-Replies sent", rep.Sent, dests + plain},
		{"Map-Reply send errors", rep.SendErrors, 0},
		{"Map-Replies ignored", rep.Ignored, 1},
		{"short datagrams (empty and oversize)", st.Short, 2},
		{"oversize datagrams", st.Oversize, 1},
		{"reserved type ignored", st.Msgs[0].Ignored, 1},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: %d, want %d", ck.what, ck.got, ck.want)
		}
	}
}

// TestSendRefusedDatagramSkipped: a datagram the kernel refuses in the
// middle of a send batch (destination port 0: EINVAL) is
// counted as a send error and the ones behind it still leave.
func TestSendRefusedDatagramSkipped(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	c, err := slowpath.NewCore(&slowpath.Config{Listen: []netip.AddrPort{netip.AddrPortFrom(lo, 0)}}, slowpath.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Start()
	r, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dst := r.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.AddrPortFrom(lo, 0)
	if err := c.Do(func() {
		for i, d := range []netip.AddrPort{dst, bad, dst, bad, bad, dst} {
			c.Send(d, []byte{0x40, byte(i)}, wire.TypeMapNotify)
		}
		c.Flush()
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, want := range []byte{0, 2, 5} {
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := r.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || buf[1] != want {
			t.Fatalf("got % x, want datagram %d", buf[:n], want)
		}
	}
	st := c.Stats().Msgs[wire.TypeMapNotify]
	if st.Sent != 3 || st.SendErrors != 3 {
		t.Fatalf("sent %d, send errors %d; want 3 and 3", st.Sent, st.SendErrors)
	}
}
