package control

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/rloc-router/rloc/wire"
)

const benchPrefixes = 100000

// benchPrefix is the i-th registered /26 inside 10.0.0.0/10.
func benchPrefix(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 10), byte(i >> 2), byte(i&3) << 6}), 26)
}

func benchRecord(i int) wire.Record {
	p := benchPrefix(i)
	return wire.Record{TTL: 1440, MaskLen: 26, EID: wire.IPAddress(p.Addr()),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true,
			Address: wire.IPAddress(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))}}}
}

// benchMS starts a Map-Server/Map-Resolver without rate limit and
// registers benchPrefixes /26s with the P bit, 255 records per Map-Register.
func benchMS(b *testing.B) *Engine {
	c := msConfig(siteConfig("bench", "10.0.0.0/8", true))
	c.MapServer.RegistrationTimeout = time.Hour
	c.Logger = nil
	ms := newEngine(b, c, nil)
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	buf := make([]byte, 65536)
	for i := 0; i < benchPrefixes; i += 255 {
		reg := wire.MapRegister{ProxyReply: true, WantMapNotify: true, Nonce: newNonce(), Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false)}
		for j := i; j < min(i+255, benchPrefixes); j++ {
			reg.Records = append(reg.Records, benchRecord(j))
		}
		msg, err := reg.AppendSigned(nil, []byte(testKey.Secret))
		if err != nil {
			b.Fatal(err)
		}
		for try := 0; ; try++ {
			cl.WriteToUDPAddrPort(msg, ms.Addr())
			cl.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := cl.ReadFromUDPAddrPort(buf); err == nil {
				break
			}
			if try == 3 {
				b.Fatal("no Map-Notify for a bulk register")
			}
		}
	}
	if n := ms.Stats().Registrations; n != benchPrefixes {
		b.Fatalf("%d registrations, want %d", n, benchPrefixes)
	}
	return ms
}

// loadgenBind sends msgs from a socket bound to local round-robin to dst from one socket, keeping at most
// window unanswered, until n answers have arrived; it returns the answers
// per second and how many requests were presumed lost.
func loadgenBind(b *testing.B, local, dst netip.AddrPort, msgs [][]byte, n int) (rate float64, lost int64) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadBuffer(4 << 20)
	pc := ipv4.NewPacketConn(conn)
	const window, batch = 512, 32
	var sent, recvd atomic.Int64
	ua := net.UDPAddrFromAddrPort(dst)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ms := make([]ipv4.Message, batch)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		for recvd.Load() < int64(n) {
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			k, err := pc.ReadBatch(ms, 0)
			if err != nil {
				return
			}
			recvd.Add(int64(k))
		}
	}()
	out := make([]ipv4.Message, batch)
	for i := range out {
		out[i].Addr = ua
	}
	start := time.Now()
	next := 0
	stall := time.Now()
	for recvd.Load() < int64(n) {
		select {
		case <-done:
			b.Fatalf("receiver stopped after %d of %d answers", recvd.Load(), n)
		default:
		}
		if sent.Load()-recvd.Load()-lost > window-batch {
			if time.Since(stall) > 200*time.Millisecond {
				lost += sent.Load() - recvd.Load() - lost // presume the window lost
				stall = time.Now()
			}
			continue
		}
		stall = time.Now()
		for i := range out {
			out[i].Buffers = [][]byte{msgs[next%len(msgs)]}
			next++
		}
		k, _ := pc.WriteBatch(out, 0)
		sent.Add(int64(k))
	}
	el := time.Since(start)
	<-done
	return float64(recvd.Load()) / el.Seconds(), lost
}

// BenchmarkMapRequestLoopback: ECM Map-Requests for registered EIDs
// answered with proxy Map-Replies over loopback by one engine holding
// 100k registrations.
func BenchmarkMapRequestLoopback(b *testing.B) {
	ms := benchMS(b)
	var msgs [][]byte
	for i := range 4096 {
		eid := benchPrefix((i * 7919) % benchPrefixes).Addr().Next()
		req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(eid)}}}
		m, _ := req.Append(nil)
		msgs = append(msgs, m)
	}
	b.ResetTimer()
	rate, lost := loadgenECM(b, ms.Addr(), msgs, b.N)
	b.ReportMetric(rate, "replies/s")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(1e9/rate, "ns/reply")
	st := ms.Stats()
	if st.ProxyReplies == 0 {
		b.Fatal("no proxy replies")
	}
}

// loadgenECM wraps each Map-Request in an ECM whose inner UDP source port is
// the generator socket's, then runs loadgen.
func loadgenECM(b *testing.B, dst netip.AddrPort, reqs [][]byte, n int) (float64, int64) {
	// loadgen binds its socket; reserve a port first so the ECMs can name it.
	return loadgenWith(b, dst, n, func(port uint16) [][]byte {
		var out [][]byte
		for _, r := range reqs {
			var q wire.MapRequest
			q.Parse(r)
			e := wire.ECM{Src: lo4, Dst: q.Records[0].EID.IP, SrcPort: port, DstPort: 4342, TTL: 64, Message: r}
			m, _ := e.Append(nil)
			out = append(out, m)
		}
		return out
	})
}

// loadgenWith is loadgen with messages built once the socket port is known.
func loadgenWith(b *testing.B, dst netip.AddrPort, n int, build func(port uint16) [][]byte) (float64, int64) {
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		b.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	return loadgenOn(b, netip.AddrPortFrom(lo4, port), dst, build(port), n)
}

func loadgenOn(b *testing.B, local, dst netip.AddrPort, msgs [][]byte, n int) (float64, int64) {
	return loadgenBind(b, local, dst, msgs, n)
}

// BenchmarkMapRequestInProcess: the engine's Map-Request handling (ECM
// parse, lookup among 100k registrations, proxy Map-Reply encode and send
// through the batch socket) driven on the engine goroutine, without the
// load generator's cost.
func BenchmarkMapRequestInProcess(b *testing.B) {
	ms := benchMS(b)
	sink, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	sp := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	var msgs [][]byte
	for i := range 4096 {
		eid := benchPrefix((i * 7919) % benchPrefixes).Addr().Next()
		req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(eid)}}}
		r, _ := req.Append(nil)
		e := wire.ECM{Src: lo4, Dst: eid, SrcPort: sp.Port(), DstPort: 4342, TTL: 64, Message: r}
		m, _ := e.Append(nil)
		msgs = append(msgs, m)
	}
	b.ResetTimer()
	start := time.Now()
	ms.do(func() {
		for i := 0; i < b.N; i++ {
			ms.c.Dispatch(sp, msgs[i%len(msgs)])
		}
		ms.c.Flush()
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "replies/s")
	if got := ms.Stats().ProxyReplies; got < uint64(b.N) {
		b.Fatalf("%d proxy replies for %d requests", got, b.N)
	}
}

// BenchmarkNegativeInProcess: Map-Requests for unregistered EIDs answered
// with negative Map-Replies (least-specific prefix search) among 100k
// registrations.
func BenchmarkNegativeInProcess(b *testing.B) {
	ms := benchMS(b)
	sink, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	sp := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	var msgs [][]byte
	for i := range 4096 {
		eid := netip.AddrFrom4([4]byte{byte(11 + i%200), byte(i), 1, 1})
		if i%2 == 1 {
			eid = netip.AddrFrom4([4]byte{10, byte(0xa0 + i%64), byte(i), 1}) // inside 10/8, unregistered
		}
		req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(eid)}}}
		r, _ := req.Append(nil)
		e := wire.ECM{Src: lo4, Dst: eid, SrcPort: sp.Port(), DstPort: 4342, TTL: 64, Message: r}
		m, _ := e.Append(nil)
		msgs = append(msgs, m)
	}
	b.ResetTimer()
	start := time.Now()
	ms.do(func() {
		for i := 0; i < b.N; i++ {
			ms.c.Dispatch(sp, msgs[i%len(msgs)])
		}
		ms.c.Flush()
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "replies/s")
	if got := ms.Stats().NegativeReplies; got < uint64(b.N) {
		b.Fatalf("%d negative replies for %d requests", got, b.N)
	}
}

// benchRegisters returns k signed one-record Map-Registers for distinct
// prefixes (HMAC-SHA-256-128).
func benchRegisters(b *testing.B, k int, notify bool) [][]byte {
	var out [][]byte
	for i := range k {
		reg := wire.MapRegister{WantMapNotify: notify, Nonce: newNonce(), Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
			Records: []wire.Record{benchRecord(i)}}
		m, err := reg.AppendSigned(nil, []byte(testKey.Secret))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// BenchmarkRegisterInProcess: Map-Registers parsed, HMAC-SHA-256 verified
// and stored (new or refreshed registrations) on the engine goroutine.
func BenchmarkRegisterInProcess(b *testing.B) {
	c := msConfig(siteConfig("bench", "10.0.0.0/8", true))
	c.Logger = nil
	ms := newEngine(b, c, nil)
	msgs := benchRegisters(b, benchPrefixes, false)
	src := netip.MustParseAddrPort("127.0.0.1:9")
	b.ResetTimer()
	start := time.Now()
	ms.do(func() {
		for i := 0; i < b.N; i++ {
			ms.c.Dispatch(src, msgs[i%len(msgs)])
		}
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "registers/s")
	if st := ms.Stats(); st.RegistrationsAccepted != uint64(b.N) {
		b.Fatalf("accepted %d of %d", st.RegistrationsAccepted, b.N)
	}
}

// BenchmarkRegisterLoopback: Map-Registers (want-map-notify) verified,
// stored and answered with a signed Map-Notify over loopback.
func BenchmarkRegisterLoopback(b *testing.B) {
	c := msConfig(siteConfig("bench", "10.0.0.0/8", true))
	c.Logger = nil
	ms := newEngine(b, c, nil)
	msgs := benchRegisters(b, benchPrefixes, true)
	b.ResetTimer()
	rate, lost := loadgenBind(b, lo4Any, ms.Addr(), msgs, b.N)
	b.ReportMetric(rate, "registers/s")
	b.ReportMetric(float64(lost), "lost")
}
