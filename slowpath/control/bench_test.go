package control

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
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
	c.MapServer.Limits.PrefixesPerSite = benchPrefixes
	c.RateLimit.Off = true
	c.Logger = slog.New(slog.DiscardHandler)
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

// Load generator: nsock sockets on 127.0.0.1, each driven by its own
// goroutine in a closed loop: it keeps up to genWindow requests
// unanswered, sends them genBatch at a time with one sendmmsg and takes
// the answers genBatch at a time with one recvmmsg, and blocks (no
// spinning) while its window is full. A socket that hears nothing for
// genStall presumes its window lost and sends again.
const (
	genBatch  = 64
	genWindow = 512
	genStall  = 200 * time.Millisecond
	// genSockets is how many generator sockets the Map-Request benchmarks
	// use: answers go to the socket that asked (the ECM's inner source
	// port), so the load is spread over them.
	genSockets = 4
)

// loadgen sends the messages build returns for each generator socket's
// port to dst round-robin from nsock sockets until n answers have arrived;
// it returns the answers per second and how many requests were presumed
// lost.
func loadgen(b *testing.B, dst netip.AddrPort, n, nsock int, build func(port uint16) [][]byte) (rate float64, lost int64) {
	type worker struct {
		conn *net.UDPConn
		msgs [][]byte
		tx   *slowpath.SendBatch
		rx   *slowpath.RecvBatch
	}
	ws := make([]worker, nsock)
	for i := range ws {
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadBuffer(4 << 20)
		conn.SetWriteBuffer(4 << 20)
		w := &ws[i]
		w.conn = conn
		w.msgs = build(conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		if w.tx, err = slowpath.NewSendBatch(conn, false, genBatch, 2048); err != nil {
			b.Fatal(err)
		}
		if w.rx, err = slowpath.NewRecvBatch(conn, genBatch, 2048, 0); err != nil {
			b.Fatal(err)
		}
	}
	var recvd, lostN atomic.Int64
	var end atomic.Int64 // when the n-th answer arrived, ns since start
	errs := make(chan error, nsock)
	start := time.Now()
	for i := range ws {
		go func(w *worker, next int) {
			out := 0 // requests unanswered
			for recvd.Load() < int64(n) {
				for out <= genWindow-genBatch {
					w.tx.Reset()
					for range genBatch {
						w.tx.Add(dst, w.msgs[next%len(w.msgs)])
						next++
					}
					for off := 0; off < genBatch; {
						k, err := w.tx.Write(off)
						if err != nil {
							errs <- err
							return
						}
						off += k
					}
					out += genBatch
				}
				w.conn.SetReadDeadline(time.Now().Add(genStall))
				k, err := w.rx.Read()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					lostN.Add(int64(out))
					out = 0
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				out = max(0, out-k)
				if got := recvd.Add(int64(k)); got >= int64(n) && got-int64(k) < int64(n) {
					end.Store(int64(time.Since(start)))
				}
			}
			errs <- nil
		}(&ws[i], i*len(ws[i].msgs)/nsock)
	}
	for range ws {
		if err := <-errs; err != nil {
			b.Fatalf("load generator: %v (after %d of %d answers)", err, recvd.Load(), n)
		}
	}
	return float64(n) / time.Duration(end.Load()).Seconds(), lostN.Load()
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
	cpu := cpuTime()
	rate, lost := loadgen(b, ms.Addr(), b.N, genSockets, func(port uint16) [][]byte { return ecmsFor(msgs, port) })
	b.ReportMetric(rate, "replies/s")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(1e9/rate, "ns/reply")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/reply")
	st := ms.Stats()
	if st.ProxyReplies == 0 {
		b.Fatal("no proxy replies")
	}
}

// cpuTime returns the CPU time the process has used, user and system, all
// threads: the cost of an answer over loopback (server and generator
// together) hardly depends on what else the machine runs, its rate does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ecmsFor wraps each Map-Request in an ECM whose inner UDP source port is
// port, where the answer goes (RFC 9301 §5.8).
func ecmsFor(reqs [][]byte, port uint16) [][]byte {
	var out [][]byte
	for _, r := range reqs {
		var q wire.MapRequest
		q.Parse(r)
		e := wire.ECM{Src: lo4, Dst: q.Records[0].EID.IP, SrcPort: port, DstPort: 4342, TTL: 64, Message: r}
		m, _ := e.Append(nil)
		out = append(out, m)
	}
	return out
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
	c.MapServer.Limits.PrefixesPerSite = benchPrefixes
	c.RateLimit.Off = true
	c.Logger = slog.New(slog.DiscardHandler)
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
	c.MapServer.Limits.PrefixesPerSite = benchPrefixes
	c.RateLimit.Off = true
	c.Logger = slog.New(slog.DiscardHandler)
	ms := newEngine(b, c, nil)
	msgs := benchRegisters(b, benchPrefixes, true)
	b.ResetTimer()
	rate, lost := loadgen(b, ms.Addr(), b.N, 1, func(uint16) [][]byte { return msgs })
	b.ReportMetric(rate, "registers/s")
	b.ReportMetric(float64(lost), "lost")
}
