package slowpath

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

const (
	batchLen   = 32   // datagrams per receive or send batch
	rxBatches  = 4    // receive batches in flight per socket
	bufLen     = 9216 // receive buffer per datagram
	missQueue  = 1024 // pending miss events
	cmdQueue   = 16
	maxTxBatch = 64 // datagrams queued per socket before a flush
)

// ErrClosed is returned by the methods of a closed Engine.
var ErrClosed = errors.New("slowpath: engine closed")

// batchConn is the batch I/O of an ipv4.PacketConn or ipv6.PacketConn.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// socket is one UDP control socket and its batches.
type socket struct {
	conn  *net.UDPConn
	bc    batchConn
	local netip.AddrPort
	is6   bool
	free  chan *rxBatch
	// transmit queue, owned by the engine goroutine
	tx    []ipv4.Message
	txUA  []net.UDPAddr
	txIP  [][16]byte
	txT   []wire.MessageType
	ntx   int
	oobOn bool
}

// rxBatch is a batch of received datagrams handed from a socket's reader
// goroutine to the engine goroutine.
type rxBatch struct {
	s    *socket
	msgs []ipv4.Message
	n    int
}

// MissEvent is a map-cache miss reported by the fast path: no mapping for
// Dst in instance IID.
type MissEvent struct {
	// IID is the instance-ID of the packet.
	IID uint32
	// Dst is the destination EID that missed.
	Dst netip.Addr
	// Src is the packet's source EID; it becomes the Map-Request's source EID.
	Src netip.Addr
	// Time is when the miss happened (for the latency histogram); zero
	// means when the engine sees the event.
	Time time.Time
}

// Engine runs the LISP control plane: one goroutine owns all protocol state
// (registrations, pending requests, timers), fed by one reader goroutine per
// socket; there is no goroutine per entry.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	inst Installer

	socks  []*socket
	sock4  *socket
	sock6  *socket
	in     chan *rxBatch
	missCh chan MissEvent
	cmdCh  chan func()
	quit   chan struct{}
	done   chan struct{}
	rwg    sync.WaitGroup

	closeOnce   sync.Once
	final       Stats
	missDropped atomic.Uint64
	// oversizeLogged rate-limits the oversize-datagram warning.
	oversizeLogged time.Time

	// Owned by the engine goroutine.
	now    time.Time
	timers timerHeap
	rl     *rateLimiter
	stats  Stats
	wbuf   []byte
	wbuf2  []byte
	req    wire.MapRequest
	rep    wire.MapReply
	reg    wire.MapRegister
	notify wire.MapNotify
	ecm    wire.ECM

	ms  *mapServer
	mr  *mapResolver
	etr *etr
	itr *itr
	mc  *mcast
}

// New validates cfg, opens the sockets and starts the engine. inst receives
// the mappings the ITR learns; it may be nil when there is no ITR role.
func New(cfg Config, inst Installer) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("slowpath config: %w", err)
	}
	if cfg.ITR != nil && inst == nil {
		return nil, errors.New("slowpath config: itr: an Installer is required")
	}
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:    cfg,
		log:    cfg.Logger,
		inst:   inst,
		in:     make(chan *rxBatch, rxBatches*2),
		missCh: make(chan MissEvent, missQueue),
		cmdCh:  make(chan func(), cmdQueue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		rl:     newRateLimiter(cfg.RateLimit),
		now:    time.Now(),
		wbuf:   make([]byte, 0, bufLen),
		wbuf2:  make([]byte, 0, bufLen),
	}
	e.stats.ResolveLatency = newHistogram()
	for _, a := range cfg.Listen {
		s, err := openSocket(a)
		if err != nil {
			for _, s := range e.socks {
				s.conn.Close()
			}
			return nil, fmt.Errorf("slowpath: listen %v: %w", a, err)
		}
		e.socks = append(e.socks, s)
		if s.is6 {
			e.sock6 = s
		} else {
			e.sock4 = s
		}
	}
	var err error
	if cfg.MapServer != nil {
		if e.ms, err = newMapServer(e, cfg.MapServer); err != nil {
			e.closeSockets()
			return nil, err
		}
	}
	if cfg.MapResolver != nil {
		e.mr = newMapResolver(e, cfg.MapResolver)
	}
	if cfg.ETR != nil {
		e.etr = newETR(e, cfg.ETR)
	}
	if cfg.ITR != nil {
		e.itr = newITR(e, cfg.ITR)
	}
	if cfg.Multicast != nil {
		if e.mc, err = newMcast(e, cfg.Multicast); err != nil {
			e.closeSockets()
			return nil, err
		}
	}
	for _, s := range e.socks {
		e.rwg.Add(1)
		go e.reader(s)
	}
	go e.loop()
	return e, nil
}

func openSocket(a netip.AddrPort) (*socket, error) {
	is6 := !(a.Addr().Is4() || a.Addr().Is4In6())
	network := "udp4"
	if is6 {
		network = "udp6"
	} else {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(a))
	if err != nil {
		return nil, err
	}
	// A large receive buffer absorbs bursts (best effort: the kernel caps it
	// at net.core.rmem_max).
	_ = conn.SetReadBuffer(4 << 20)
	s := &socket{conn: conn, is6: is6, free: make(chan *rxBatch, rxBatches)}
	s.local = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if is6 {
		pc := ipv6.NewPacketConn(conn)
		s.oobOn = pc.SetControlMessage(ipv6.FlagDst, true) == nil
		s.bc = pc
	} else {
		pc := ipv4.NewPacketConn(conn)
		s.oobOn = pc.SetControlMessage(ipv4.FlagDst, true) == nil
		s.bc = pc
	}
	for range rxBatches {
		b := &rxBatch{s: s, msgs: make([]ipv4.Message, batchLen)}
		for i := range b.msgs {
			b.msgs[i].Buffers = [][]byte{make([]byte, bufLen)}
			b.msgs[i].OOB = make([]byte, 128)
		}
		s.free <- b
	}
	s.tx = make([]ipv4.Message, maxTxBatch)
	s.txUA = make([]net.UDPAddr, maxTxBatch)
	s.txIP = make([][16]byte, maxTxBatch)
	s.txT = make([]wire.MessageType, maxTxBatch)
	for i := range s.tx {
		s.tx[i].Buffers = [][]byte{make([]byte, 0, 1500)}
	}
	return s, nil
}

// Addrs returns the local addresses of the engine's sockets.
func (e *Engine) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(e.socks))
	for i, s := range e.socks {
		out[i] = s.local
	}
	return out
}

// Addr returns the local address of the IPv4 socket, or the IPv6 one when
// there is no IPv4 socket.
func (e *Engine) Addr() netip.AddrPort {
	if e.sock4 != nil {
		return e.sock4.local
	}
	return e.sock6.local
}

// Miss queues a miss event for the ITR without blocking; it returns false
// when the queue is full (counted) or there is no ITR role.
func (e *Engine) Miss(ev MissEvent) bool {
	if e.itr == nil {
		return false
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	select {
	case e.missCh <- ev:
		return true
	default:
		e.missDropped.Add(1)
		return false
	}
}

// do runs f on the engine goroutine and waits for it. It returns ErrClosed
// when the engine has stopped.
func (e *Engine) do(f func()) error {
	ch := make(chan struct{})
	select {
	case e.cmdCh <- func() { f(); close(ch) }:
	case <-e.done:
		return ErrClosed
	}
	select {
	case <-ch:
		return nil
	case <-e.done:
		return ErrClosed
	}
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	var s Stats
	if err := e.do(func() { s = e.snapshot() }); err != nil {
		return e.final
	}
	return s
}

func (e *Engine) snapshot() Stats {
	s := e.stats
	s.ResolveLatency = e.stats.ResolveLatency.clone()
	s.RateTableFull = e.rl.full
	s.MissesDropped = e.missDropped.Load()
	if e.ms != nil {
		s.Registrations = e.ms.nregs
	}
	return s
}

// Close deregisters (when configured), closes the sockets and stops the
// engine goroutines. It is safe to call more than once.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		_ = e.do(func() {
			if e.etr != nil && e.cfg.ETR.DeregisterOnStop {
				e.etr.deregister()
			}
			if e.mc != nil {
				e.mc.stop()
			}
			e.flush()
		})
		close(e.quit)
		e.closeSockets()
		e.rwg.Wait()
		<-e.done
	})
	return nil
}

func (e *Engine) closeSockets() {
	for _, s := range e.socks {
		s.conn.Close()
	}
}

// reader receives batches of datagrams from s and hands them to the engine.
func (e *Engine) reader(s *socket) {
	defer e.rwg.Done()
	for {
		var b *rxBatch
		select {
		case b = <-s.free:
		case <-e.quit:
			return
		}
		n, err := s.bc.ReadBatch(b.msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-e.quit:
				return
			default:
			}
			// Transient errors (ICMP-induced ECONNREFUSED and the like).
			s.free <- b
			continue
		}
		b.n = n
		select {
		case e.in <- b:
		case <-e.quit:
			return
		}
	}
}

// loop is the engine goroutine.
func (e *Engine) loop() {
	defer close(e.done)
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	var armed time.Time
	e.now = time.Now()
	if e.etr != nil {
		e.etr.start()
	}
	if e.itr != nil {
		e.itr.start()
	}
	if e.mc != nil {
		e.mc.start()
	}
	for {
		var tc <-chan time.Time
		if at, ok := e.timers.next(); ok {
			if !at.Equal(armed) {
				tm.Reset(max(0, time.Until(at)))
				armed = at
			}
			tc = tm.C
		}
		select {
		case b := <-e.in:
			e.now = time.Now()
			e.handleBatch(b)
		case ev := <-e.missCh:
			e.now = time.Now()
			if e.mc != nil && ev.Dst.Unmap().IsMulticast() {
				e.mc.onMiss(ev)
			} else {
				e.itr.onMiss(ev)
			}
		case f := <-e.cmdCh:
			e.now = time.Now()
			f()
		case <-tc:
			armed = time.Time{}
			e.now = time.Now()
			e.timers.run(e.now)
		case <-e.quit:
			e.final = e.snapshot()
			return
		}
		e.flush()
	}
}

func (e *Engine) handleBatch(b *rxBatch) {
	for i := 0; i < b.n; i++ {
		m := &b.msgs[i]
		ua, _ := m.Addr.(*net.UDPAddr)
		if ua == nil {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if m.Flags&unix.MSG_TRUNC != 0 {
			e.stats.Short++
			e.stats.Oversize++
			if e.now.Sub(e.oversizeLogged) >= time.Second {
				e.oversizeLogged = e.now
				e.log.Warn("control message larger than the receive buffer dropped (an RLE of more than about 900 entries?)",
					"src", src, "limit_bytes", bufLen, "dropped_total", e.stats.Oversize)
			}
			continue
		}
		if m.N == 0 {
			e.stats.Short++
			continue
		}
		e.handle(b.s, src, m.Buffers[0][:m.N], m.OOB[:m.NN])
	}
	b.s.free <- b
}

// handle dispatches one datagram by message type. It never panics on any
// input: parsers return errors, which are counted.
func (e *Engine) handle(s *socket, src netip.AddrPort, b []byte, oob []byte) {
	t, err := wire.PeekType(b)
	if err != nil {
		e.stats.Short++
		return
	}
	ms := &e.stats.Msgs[t]
	if !e.rl.allow(src, e.now) {
		ms.RateLimited++
		return
	}
	ms.Received++
	switch t {
	case wire.TypeMapRequest:
		e.onMapRequest(s, src, b, oob)
	case wire.TypeMapReply:
		if e.mc != nil && e.mc.onMapReply(src, b) {
			return
		}
		if e.itr == nil {
			ms.Ignored++
			return
		}
		e.itr.onMapReply(src, b)
	case wire.TypeMapRegister:
		if e.mc != nil && e.mcastJoin(src, b) {
			return
		}
		if e.ms == nil {
			ms.Ignored++
			return
		}
		e.ms.onRegister(src, b)
	case wire.TypeMapNotify:
		if e.mc != nil && e.mc.onMapNotify(src, b) {
			return
		}
		if e.etr == nil {
			ms.Ignored++
			return
		}
		e.etr.onMapNotify(src, b)
	case wire.TypeECM:
		e.onECM(src, b)
	case wire.TypeMapNotifyAck:
		if e.ms == nil {
			ms.Ignored++
			return
		}
		e.ms.onNotifyAck(src, b)
	default:
		ms.Ignored++
	}
}

// onMapRequest handles a Map-Request received without ECM: an RLOC-probe or
// a request for the ETR, an SMR for the ITR, or (from lig-like tools) a
// request to the Map-Server/Map-Resolver.
func (e *Engine) onMapRequest(s *socket, src netip.AddrPort, b []byte, oob []byte) {
	st := &e.stats.Msgs[wire.TypeMapRequest]
	if err := e.req.Parse(b); err != nil {
		st.BadParse++
		return
	}
	req := &e.req
	if e.mc != nil && e.mc.onRequest(src, req) {
		return
	}
	switch {
	case req.SMR && !req.SMRInvoked:
		if e.itr == nil {
			st.Ignored++
			return
		}
		e.itr.onSMR(src, req)
	case e.etr != nil && e.etr.serves(req):
		dst := s.local.Addr()
		if req.Probe {
			dst = localDst(s, oob, dst)
		}
		e.etr.answer(src.Port(), src, req, dst)
	case req.Probe:
		st.Ignored++
	case e.ms != nil || e.mr != nil:
		e.resolve(src.Port(), src, req, b, nil)
	default:
		st.Ignored++
	}
}

// onECM handles an Encapsulated Control Message: a Map-Request for the
// Map-Resolver, the Map-Server or (E bit) the ETR.
func (e *Engine) onECM(src netip.AddrPort, b []byte) {
	st := &e.stats.Msgs[wire.TypeECM]
	if err := e.ecm.Parse(b); err != nil {
		st.BadParse++
		return
	}
	if t, err := wire.PeekType(e.ecm.Message); err != nil || t != wire.TypeMapRequest {
		st.Ignored++
		return
	}
	rst := &e.stats.Msgs[wire.TypeMapRequest]
	rst.Received++
	if err := e.req.Parse(e.ecm.Message); err != nil {
		rst.BadParse++
		return
	}
	req := &e.req
	switch {
	case e.etr != nil && (e.ecm.ToETR || (e.ms == nil && e.mr == nil)):
		if !e.etr.serves(req) {
			rst.Ignored++
			return
		}
		e.etr.answer(e.ecm.SrcPort, src, req, netip.Addr{})
	case e.ms != nil || e.mr != nil:
		e.resolve(e.ecm.SrcPort, src, req, e.ecm.Message, &e.ecm)
	default:
		rst.Ignored++
	}
}

// resolve answers a Map-Request as Map-Server and/or Map-Resolver. ecm is
// the encapsulation it arrived in, nil for a plain Map-Request.
func (e *Engine) resolve(port uint16, src netip.AddrPort, req *wire.MapRequest, raw []byte, ecm *wire.ECM) {
	if k, ok := sgKeyOf(&req.Records[0].EID); ok && e.ms != nil {
		e.ms.answerSG(port, src, req, k)
		return
	}
	iid, p, ok := req.Records[0].Prefix()
	if !ok {
		if iid, g, err := replicate.ParseGroupNameEID(&req.Records[0].EID); err == nil {
			e.resolveName(port, src, req, raw, ecm, iid, g)
			return
		}
		e.stats.Msgs[wire.TypeMapRequest].Ignored++
		return
	}
	if e.ms != nil && e.ms.answer(port, src, req, raw, ecm, iid, p.Addr()) {
		return
	}
	if e.mr != nil {
		e.mr.resolve(port, src, req, raw, ecm, iid, p.Addr())
		return
	}
	e.negativeReply(port, src, req, iid, p.Addr())
}

// localDst returns the destination address of a datagram from its control
// message, or def when it carries none.
func localDst(s *socket, oob []byte, def netip.Addr) netip.Addr {
	if !s.oobOn || len(oob) == 0 {
		return def
	}
	var ip net.IP
	if s.is6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) != nil {
			return def
		}
		ip = cm.Dst
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) != nil {
			return def
		}
		ip = cm.Dst
	}
	if a, ok := netip.AddrFromSlice(ip); ok {
		return a.Unmap()
	}
	return def
}

// replyTarget picks where a Map-Reply goes: the first ITR-RLOC of an address
// family the engine has a socket for, at port (RFC 9301 §5.2: the source
// port of the Map-Request); fallback when there is none.
func (e *Engine) replyTarget(rlocs []wire.Address, port uint16, fallback netip.AddrPort) netip.AddrPort {
	if port == 0 {
		port = wire.ControlPort
	}
	for i := range rlocs {
		a := &rlocs[i]
		if a.AFI != wire.AFIIPv4 && a.AFI != wire.AFIIPv6 {
			continue
		}
		ip := a.IP.Unmap()
		if (ip.Is4() && e.sock4 != nil) || (ip.Is6() && e.sock6 != nil) {
			return netip.AddrPortFrom(ip, port)
		}
	}
	return fallback
}

// send queues msg for dst; the queue is flushed after each event the engine
// handles. t is the message type for the counters.
func (e *Engine) send(dst netip.AddrPort, msg []byte, t wire.MessageType) {
	ip := dst.Addr().Unmap()
	s := e.sock4
	if ip.Is6() {
		s = e.sock6
	}
	if s == nil || !ip.IsValid() {
		e.stats.Msgs[t&15].SendErrors++
		return
	}
	if s.ntx == len(s.tx) {
		e.flushSocket(s)
	}
	i := s.ntx
	s.ntx++
	m := &s.tx[i]
	m.Buffers[0] = append(m.Buffers[0][:0], msg...)
	ua := &s.txUA[i]
	if ip.Is4() {
		a4 := ip.As4()
		copy(s.txIP[i][:4], a4[:])
		ua.IP = s.txIP[i][:4]
	} else {
		s.txIP[i] = ip.As16()
		ua.IP = s.txIP[i][:16]
	}
	ua.Port = int(dst.Port())
	ua.Zone = ""
	m.Addr = ua
	s.txT[i] = t
}

func (e *Engine) flush() {
	for _, s := range e.socks {
		if s.ntx > 0 {
			e.flushSocket(s)
		}
	}
}

func (e *Engine) flushSocket(s *socket) {
	off := 0
	for off < s.ntx {
		n, err := s.bc.WriteBatch(s.tx[off:s.ntx], 0)
		n = max(n, 0)
		for j := off; j < off+n; j++ {
			e.stats.Msgs[s.txT[j]&15].Sent++
		}
		off += n
		if (err != nil || n == 0) && off < s.ntx {
			// Skip the datagram the kernel refused and carry on.
			e.stats.Msgs[s.txT[off]&15].SendErrors++
			off++
		}
	}
	s.ntx = 0
}

// newNonce returns 8 random bytes (RFC 9301 §5.2: the nonce is random).
func newNonce() wire.Nonce {
	var n wire.Nonce
	_, _ = rand.Read(n[:])
	return n
}

// eidAddress returns the EID address of ip in iid: a plain address in
// instance 0, an instance-ID LCAF otherwise (RFC 8060 §4.1).
func eidAddress(iid uint32, ip netip.Addr) wire.Address {
	if iid == 0 {
		return wire.IPAddress(ip)
	}
	return wire.IIDAddress(iid, ip)
}

// ttlMinutes converts a duration to a record TTL in whole minutes, at least 1.
func ttlMinutes(d time.Duration) uint32 {
	m := d / time.Minute
	if m < 1 {
		return 1
	}
	if m > 0xfffffffe {
		return 0xfffffffe
	}
	return uint32(m)
}

// ttlDuration converts a record TTL to a duration; receiver-decides
// (RFC 9301 §5.4) becomes def.
func ttlDuration(ttl uint32, def time.Duration) time.Duration {
	if ttl == wire.TTLReceiverDecides {
		return def
	}
	return time.Duration(ttl) * time.Minute
}
