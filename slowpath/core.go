package slowpath

import (
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

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/wire"
)

const (
	batchLen  = 64   // datagrams per receive batch (one recvmmsg)
	rxBatches = 4    // receive batches in flight per socket
	bufLen    = 9216 // receive buffer per datagram
	oobLen    = 128  // control messages per datagram
	missQueue = 1024 // pending miss events
	cmdQueue  = 16
	// maxTxBatch is how many datagrams a socket queues before they go
	// out in one sendmmsg; the queue is also sent at the end of every
	// event (a received batch and the ones queued behind it).
	maxTxBatch = 128
	txBufCap   = 1500 // initial capacity of a queued datagram
)

// ErrClosed is returned by the methods of a closed Core.
var ErrClosed = errors.New("slowpath: engine closed")

// socket is one UDP control socket and its batches.
type socket struct {
	conn  *net.UDPConn
	local netip.AddrPort
	is6   bool
	free  chan *rxBatch
	// transmit queue, owned by the core goroutine; txT is the message
	// type of each queued datagram, for the counters.
	tx    *SendBatch
	txT   []wire.MessageType
	oobOn bool
}

// rxBatch is a batch of received datagrams handed from a socket's reader
// goroutine to the core goroutine.
type rxBatch struct {
	s *socket
	*RecvBatch
}

// Options are the parts of a Core that tests replace.
type Options struct {
	// Clock, when set, is the time source of the event loop instead of
	// time.Now; with it no real timer is armed and the timers run only
	// when Tick is called (fake clocks in tests).
	Clock func() time.Time
}

// Core is the control plane's core: the UDP control sockets with batched
// I/O, one goroutine that owns all protocol state (the event loop), the
// timer heap, the per-source rate limit, dispatch of each received message
// to the handlers the roles registered, and the per-type counters. It
// knows no role: roles register handlers (Handle, HandleMiss, OnStart,
// OnStop) before Start and call back through its methods from the event
// loop.
type Core struct {
	log    *slog.Logger
	events func(Event)
	clock  func() time.Time
	manual bool

	socks  []*socket
	sock4  *socket
	sock6  *socket
	in     chan *rxBatch
	missCh chan queuedMiss
	cmdCh  chan func()
	quit   chan struct{}
	done   chan struct{}
	rwg    sync.WaitGroup

	started     bool
	closeOnce   sync.Once
	final       Stats
	missDropped atomic.Uint64
	// oversizeLogged rate-limits the oversize-datagram warning.
	oversizeLogged time.Time

	routes  routes
	misses  []MissHandler
	onStart []func()
	onStop  []func()

	// Owned by the core goroutine.
	now    time.Time
	timers timerHeap
	rl     *rateLimiter
	stats  Stats
	msg    Msg
	req    wire.MapRequest
	ecm    wire.ECM
	fwdBuf []byte
}

// NewCore opens the sockets of cfg.Listen (cfg with its defaults applied,
// see Config.WithDefaults) and returns a core that is not yet running:
// the roles register their handlers, then Start runs it.
func NewCore(cfg *Config, opt Options) (*Core, error) {
	c := &Core{
		log:    cfg.Logger,
		events: cfg.Events,
		clock:  opt.Clock,
		manual: opt.Clock != nil,
		in:     make(chan *rxBatch, rxBatches*2),
		missCh: make(chan queuedMiss, missQueue),
		cmdCh:  make(chan func(), cmdQueue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		rl:     newRateLimiter(cfg.RateLimit),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	c.now = c.clock()
	c.stats.ResolveLatency = NewHistogram()
	for _, a := range cfg.Listen {
		s, err := openSocket(a)
		if err != nil {
			c.closeSockets()
			return nil, fmt.Errorf("slowpath: listen %v: %w", a, err)
		}
		c.socks = append(c.socks, s)
		if s.is6 {
			c.sock6 = s
		} else {
			c.sock4 = s
		}
	}
	return c, nil
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
	// The destination address of each datagram (RLOC-probes, Msg.Local).
	if is6 {
		s.oobOn = ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst, true) == nil
	} else {
		s.oobOn = ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst, true) == nil
	}
	for range rxBatches {
		rb, err := NewRecvBatch(conn, batchLen, bufLen, oobLen)
		if err != nil {
			conn.Close()
			return nil, err
		}
		s.free <- &rxBatch{s: s, RecvBatch: rb}
	}
	if s.tx, err = NewSendBatch(conn, is6, maxTxBatch, txBufCap); err != nil {
		conn.Close()
		return nil, err
	}
	s.txT = make([]wire.MessageType, maxTxBatch)
	return s, nil
}

// OnStart registers f to run on the event loop when it starts, in
// registration order (roles send their first registrations, arm their
// periodic timers).
func (c *Core) OnStart(f func()) { c.onStart = append(c.onStart, f) }

// OnStop registers f to run on the event loop when Close is called, before
// the sockets close, in registration order (deregistrations, withdrawals).
func (c *Core) OnStop(f func()) { c.onStop = append(c.onStop, f) }

// HandleMiss registers a handler of the fast path's miss events; handlers
// are asked in registration order until one reports it took the event.
func (c *Core) HandleMiss(h MissHandler) { c.misses = append(c.misses, h) }

// Start starts the socket readers and the event loop.
func (c *Core) Start() {
	c.started = true
	for _, s := range c.socks {
		c.rwg.Add(1)
		go c.reader(s)
	}
	go c.loop()
}

// Addrs returns the local addresses of the core's sockets.
func (c *Core) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(c.socks))
	for i, s := range c.socks {
		out[i] = s.local
	}
	return out
}

// Addr returns the local address of the IPv4 socket, or the IPv6 one when
// there is no IPv4 socket.
func (c *Core) Addr() netip.AddrPort {
	if c.sock4 != nil {
		return c.sock4.local
	}
	return c.sock6.local
}

// Log returns the core's logger.
func (c *Core) Log() *slog.Logger { return c.log }

// Now returns the time of the event being handled (event loop only).
func (c *Core) Now() time.Time { return c.now }

// MissHandler is a role's handler of the fast path's misses: at is when the
// miss reached the control plane (the start of the resolution latency). It
// reports whether it took the miss.
type MissHandler func(ev fastpath.MissEvent, at time.Time) bool

// queuedMiss is a miss on its way to the event loop.
type queuedMiss struct {
	ev fastpath.MissEvent
	at time.Time
}

// Miss queues a miss event without blocking; it returns false when the
// queue is full (counted).
func (c *Core) Miss(ev fastpath.MissEvent) bool {
	select {
	case c.missCh <- queuedMiss{ev, time.Now()}:
		return true
	default:
		c.missDropped.Add(1)
		return false
	}
}

// Do runs f on the event loop and waits for it. It returns ErrClosed when
// the core has stopped.
func (c *Core) Do(f func()) error {
	ch := make(chan struct{})
	select {
	case c.cmdCh <- func() { f(); close(ch) }:
	case <-c.done:
		return ErrClosed
	}
	select {
	case <-ch:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// Tick runs, on the event loop, the timers due at the clock's time; it is
// how a test with a fake clock (Options.Clock) lets time pass.
func (c *Core) Tick() error {
	return c.Do(func() { c.timers.run(c.now) })
}

// Stats returns a snapshot of the core's counters: the per-type message
// counters, short and oversize datagrams, the rate limit and the miss
// queue. Roles keep their own counters; the assembly adds them.
func (c *Core) Stats() Stats {
	var s Stats
	if err := c.Do(func() { s = c.snapshot() }); err != nil {
		return c.final
	}
	return s
}

// Snapshot returns the core's counters (event loop only); Stats is the
// same from any goroutine.
func (c *Core) Snapshot() Stats { return c.snapshot() }

func (c *Core) snapshot() Stats {
	s := c.stats
	s.ResolveLatency = c.stats.ResolveLatency.Clone()
	s.RateTableFull = c.rl.full
	s.RateLimitedSource, s.RateLimitedTotal = c.rl.bySource, c.rl.byTotal
	s.MissesDropped = c.missDropped.Load()
	return s
}

// Trust exempts src from the rate limit's total budgets for a while
// (RateLimitConfig): roles call it for a source that proved itself, e.g.
// with an authenticated registration (event loop only).
func (c *Core) Trust(src netip.Addr) { c.rl.trust(src, c.now.Add(trustFor), c.now) }

// TrustUntil exempts src from the total budgets until the given time: a
// registration restored at start-up keeps its source trusted while it
// lives (event loop or before the core starts).
func (c *Core) TrustUntil(src netip.Addr, until time.Time) { c.rl.trust(src, until, c.now) }

// Trusted reports whether src is spared the total budgets now (event
// loop only).
func (c *Core) Trusted(src netip.Addr) bool { return c.rl.isTrusted(src.Unmap(), c.now) }

// TrustAlways exempts a configured peer (a Map-Server, a Map-Resolver)
// from the rate limit's total budgets for good (event loop or before the
// core starts).
func (c *Core) TrustAlways(src netip.Addr) { c.rl.trust(src, time.Time{}, c.now) }

// Msg returns the counters of message type t, for the role handling or
// sending it to update (event loop only).
func (c *Core) Msg(t wire.MessageType) *MsgStats { return &c.stats.Msgs[t&15] }

// Event reports ev to Config.Events, if set.
func (c *Core) Event(ev Event) {
	if c.events != nil {
		c.events(ev)
	}
}

// EventsOn reports whether events are delivered anywhere (so that a role
// can skip building them).
func (c *Core) EventsOn() bool { return c.events != nil }

// Close runs the OnStop functions, closes the sockets and stops the core
// goroutines. It is safe to call more than once.
func (c *Core) Close() error {
	c.closeOnce.Do(func() {
		if !c.started {
			c.closeSockets()
			return
		}
		_ = c.Do(func() {
			for _, f := range c.onStop {
				f()
			}
			c.flush()
		})
		close(c.quit)
		c.closeSockets()
		c.rwg.Wait()
		<-c.done
	})
	return nil
}

func (c *Core) closeSockets() {
	for _, s := range c.socks {
		s.conn.Close()
	}
}

// reader receives batches of datagrams from s and hands them to the loop.
func (c *Core) reader(s *socket) {
	defer c.rwg.Done()
	for {
		var b *rxBatch
		select {
		case b = <-s.free:
		case <-c.quit:
			return
		}
		_, err := b.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-c.quit:
				return
			default:
			}
			// Transient errors (ICMP-induced ECONNREFUSED and the like).
			s.free <- b
			continue
		}
		select {
		case c.in <- b:
		case <-c.quit:
			return
		}
	}
}

// loop is the core goroutine.
func (c *Core) loop() {
	defer close(c.done)
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	var armed time.Time
	c.now = c.clock()
	for _, f := range c.onStart {
		f()
	}
	c.flush() // what the start hooks sent leaves now, not with the first event
	for {
		var tc <-chan time.Time
		if at, ok := c.timers.next(); ok && !c.manual {
			if !at.Equal(armed) {
				tm.Reset(max(0, at.Sub(c.clock())))
				armed = at
			}
			tc = tm.C
		}
		select {
		case b := <-c.in:
			c.now = c.clock()
			c.handleBatch(b)
			c.drainBatches()
		case q := <-c.missCh:
			c.now = c.clock()
			for _, h := range c.misses {
				if h(q.ev, q.at) {
					break
				}
			}
		case f := <-c.cmdCh:
			c.now = c.clock()
			f()
		case <-tc:
			armed = time.Time{}
			c.now = c.clock()
			c.timers.run(c.now)
		case <-c.quit:
			c.final = c.snapshot()
			return
		}
		c.flush()
	}
}

// drainBatches handles the batches that are already queued behind the
// one just handled, up to one round of every socket's batches, so that
// their answers leave together in the flush that ends the event.
func (c *Core) drainBatches() {
	for range rxBatches * len(c.socks) {
		select {
		case b := <-c.in:
			c.handleBatch(b)
		default:
			return
		}
	}
}

func (c *Core) handleBatch(b *rxBatch) {
	for i := range b.Len() {
		data, src, oob, trunc := b.Datagram(i)
		if !src.IsValid() {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if trunc {
			c.stats.Short++
			c.stats.Oversize++
			if c.now.Sub(c.oversizeLogged) >= time.Second {
				c.oversizeLogged = c.now
				c.log.Warn("control message larger than the receive buffer dropped (an RLE of more than about 900 entries?)",
					"src", src, "limit_bytes", bufLen, "dropped_total", c.stats.Oversize)
			}
			continue
		}
		if len(data) == 0 {
			c.stats.Short++
			continue
		}
		c.handle(b.s, src, data, oob)
	}
	b.s.free <- b
}

// Inject handles b as a datagram from src received on the first socket,
// on the event loop, and flushes what the roles sent (robustness tests and
// fuzzers feed the dispatch this way).
func (c *Core) Inject(src netip.AddrPort, b []byte) error {
	return c.Do(func() {
		c.Dispatch(src, b)
		c.flush()
	})
}

// Dispatch handles b as a datagram from src received on the first socket
// (event loop only; in-process benchmarks); what the roles send stays
// queued until Flush or the end of the event.
func (c *Core) Dispatch(src netip.AddrPort, b []byte) { c.handle(c.socks[0], src, b, nil) }

// Flush sends what the roles queued (event loop only).
func (c *Core) Flush() { c.flush() }

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

// ReplyTarget picks where a Map-Reply goes: the first ITR-RLOC of an
// address family the core has a socket for, at port (RFC 9301 §5.2: the
// source port of the Map-Request); fallback when there is none.
func (c *Core) ReplyTarget(rlocs []wire.Address, port uint16, fallback netip.AddrPort) netip.AddrPort {
	if port == 0 {
		port = wire.ControlPort
	}
	for i := range rlocs {
		a := &rlocs[i]
		if a.AFI != wire.AFIIPv4 && a.AFI != wire.AFIIPv6 {
			continue
		}
		ip := a.IP.Unmap()
		if (ip.Is4() && c.sock4 != nil) || (ip.Is6() && c.sock6 != nil) {
			return netip.AddrPortFrom(ip, port)
		}
	}
	return fallback
}

// errNoSocket is Send's error for a destination no socket reaches.
var errNoSocket = errors.New("slowpath: no socket for the destination's address family")

// Send queues msg, a control message of type t, for dst; the queue is
// flushed after each event the core handles. msg is copied. A destination
// of an address family without a socket is counted as a send error.
func (c *Core) Send(dst netip.AddrPort, msg []byte, t wire.MessageType) error {
	ip := dst.Addr().Unmap()
	s := c.sock4
	if ip.Is6() {
		s = c.sock6
	}
	if s == nil || !ip.IsValid() {
		c.stats.Msgs[t&15].SendErrors++
		return errNoSocket
	}
	if s.tx.Len() == s.tx.Slots() {
		c.flushSocket(s)
	}
	i, ok := s.tx.Add(netip.AddrPortFrom(ip, dst.Port()), msg)
	if !ok {
		c.stats.Msgs[t&15].SendErrors++
		return errZone
	}
	s.txT[i] = t
	return nil
}

// LocalPort returns the port of the socket that sends to dst's address
// family: the inner source port of an ECM (RFC 9301 §5.8); false when no
// socket reaches it.
func (c *Core) LocalPort(dst netip.AddrPort) (uint16, bool) {
	s := c.sock4
	if dst.Addr().Unmap().Is6() {
		s = c.sock6
	}
	if s == nil {
		return 0, false
	}
	return s.local.Port(), true
}

func (c *Core) flush() {
	for _, s := range c.socks {
		if s.tx.Len() > 0 {
			c.flushSocket(s)
		}
	}
}

func (c *Core) flushSocket(s *socket) {
	off, n := 0, s.tx.Len()
	for off < n {
		k, err := s.tx.Write(off)
		k = max(k, 0)
		for j := off; j < off+k; j++ {
			c.stats.Msgs[s.txT[j]&15].Sent++
		}
		off += k
		if (err != nil || k == 0) && off < n {
			// Skip the datagram the kernel refused and carry on.
			c.stats.Msgs[s.txT[off]&15].SendErrors++
			off++
		}
	}
	s.tx.Reset()
}
