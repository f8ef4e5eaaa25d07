// Package mem implements ring.Port with in-memory rings: two Ports joined
// like the two ends of a veth pair, for unit tests and pipeline benchmarks.
//
// Each end works like an AF_XDP socket in copy mode. It keeps a fill ring of
// free chunks from its own Pool and an rx ring of received chunks; both are
// single-producer single-consumer rings, so the two ends may run on two
// goroutines (a test injecting on one end while a worker polls the other).
// Transmit on one end copies each frame into a chunk from the peer's fill
// ring, puts it on the peer's rx ring and returns the sent chunk to the
// sender's Pool at once, so Complete has nothing to reap. When the peer has
// no free chunk or no rx slot, Transmit stops there and returns the count it
// took (back-pressure instead of loss, so tests are deterministic).
//
// Several Ports may share one Pool (Config.Pool), like the sockets of one
// worker sharing a UMEM; such Ports must be driven by one goroutine.
package mem

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/ring"
)

// Defaults for Config fields left zero.
const (
	DefaultFrames    = 4096
	DefaultChunkSize = 2048
	DefaultHeadroom  = 256
	DefaultRingSize  = 1024
)

// Config configures one end of a pair.
type Config struct {
	// Pool the end draws frames from; nil makes a new one with Frames chunks
	// of ChunkSize bytes and Headroom bytes of headroom.
	Pool      *ring.Pool
	Frames    int
	ChunkSize int
	Headroom  int
	// RingSize is the size of the fill and rx rings (a power of two).
	RingSize int
}

// NewPool makes a heap-backed Pool of frames chunks of chunkSize bytes whose
// frames start headroom bytes into their chunk.
func NewPool(frames, chunkSize, headroom int) (*ring.Pool, error) {
	if frames <= 0 || chunkSize <= 0 {
		return nil, errors.New("mem: frames and chunk size must be positive")
	}
	return ring.NewPool(make([]byte, frames*chunkSize), chunkSize, headroom)
}

// desc is a ring entry: a chunk and the packet's place in it.
type desc struct {
	idx, off, n uint32
}

// spsc is a single-producer single-consumer ring of descs.
type spsc struct {
	prod atomic.Uint32
	_    [60]byte
	cons atomic.Uint32
	_    [60]byte
	mask uint32
	d    []desc
}

func newSPSC(size int) *spsc {
	return &spsc{mask: uint32(size - 1), d: make([]desc, size)}
}

// Port is one end of an in-memory link. It implements ring.Port.
type Port struct {
	pool   *ring.Pool
	peer   *Port
	fill   *spsc // this end produces (free chunks), the peer consumes
	rx     *spsc // the peer produces (received packets), this end consumes
	bell   chan struct{}
	timer  *time.Timer
	closed atomic.Bool

	// RxPackets counts frames handed out by Receive.
	RxPackets uint64
	// TxPackets counts frames Transmit delivered to the peer.
	TxPackets uint64
	// TxCopyFail counts frames Transmit could not deliver for lack of a peer
	// chunk or rx slot (they stay with the caller).
	TxCopyFail uint64
	// TxTooBig counts frames longer than the peer's chunks (dropped).
	TxTooBig uint64
}

var _ ring.Port = (*Port)(nil)

// NewPair returns two connected Ports: frames transmitted on a are received
// on b and the other way round.
func NewPair(ca, cb Config) (a, b *Port, err error) {
	if a, err = newPort(ca); err != nil {
		return nil, nil, err
	}
	if b, err = newPort(cb); err != nil {
		return nil, nil, err
	}
	a.peer, b.peer = b, a
	return a, b, nil
}

func newPort(c Config) (*Port, error) {
	if c.RingSize == 0 {
		c.RingSize = DefaultRingSize
	}
	if c.RingSize < 1 || c.RingSize&(c.RingSize-1) != 0 || c.RingSize > 1<<24 {
		return nil, errors.New("mem: ring size must be a power of two")
	}
	pool := c.Pool
	if pool == nil {
		if c.Frames == 0 {
			c.Frames = DefaultFrames
		}
		if c.ChunkSize == 0 {
			c.ChunkSize = DefaultChunkSize
		}
		if c.Headroom == 0 {
			c.Headroom = DefaultHeadroom
		}
		var err error
		if pool, err = NewPool(c.Frames, c.ChunkSize, c.Headroom); err != nil {
			return nil, err
		}
	}
	p := &Port{
		pool: pool,
		fill: newSPSC(c.RingSize),
		rx:   newSPSC(c.RingSize),
		bell: make(chan struct{}, 1),
	}
	p.refill()
	return p, nil
}

// refill tops the fill ring up from the Pool, keeping half the Pool for Alloc.
func (p *Port) refill() {
	r := p.fill
	prod := r.prod.Load()
	cons := r.cons.Load()
	room := uint32(len(r.d)) - (prod - cons)
	for room > 0 && p.pool.Free() > p.pool.NumChunks()/2 {
		idx, ok := p.pool.Take()
		if !ok {
			break
		}
		r.d[prod&r.mask] = desc{idx: idx}
		prod++
		room--
	}
	r.prod.Store(prod)
}

// Receive implements ring.Port.
func (p *Port) Receive(frames []ring.Frame) (int, error) {
	if p.closed.Load() {
		return 0, ring.ErrClosed
	}
	r := p.rx
	cons := r.cons.Load()
	avail := int(r.prod.Load() - cons)
	n := 0
	for n < len(frames) && n < avail {
		d := r.d[cons&r.mask]
		f, ok := p.pool.GetIndex(d.idx, int(d.off), int(d.n))
		cons++
		if !ok {
			continue
		}
		frames[n] = f
		n++
	}
	r.cons.Store(cons)
	p.RxPackets += uint64(n)
	p.refill()
	return n, nil
}

// RxPending implements ring.RxPender: whether frames wait to be received.
func (p *Port) RxPending() bool { return p.rx.prod.Load() != p.rx.cons.Load() }

// Wait implements ring.Port.
func (p *Port) Wait(timeout time.Duration) (bool, error) {
	for {
		if p.closed.Load() {
			return false, ring.ErrClosed
		}
		if p.rx.prod.Load() != p.rx.cons.Load() {
			return true, nil
		}
		if timeout == 0 {
			return false, nil
		}
		if timeout < 0 {
			<-p.bell
			continue
		}
		if p.timer == nil {
			p.timer = time.NewTimer(timeout)
		} else {
			p.timer.Reset(timeout)
		}
		select {
		case <-p.bell:
			p.timer.Stop()
		case <-p.timer.C:
			timeout = 0
		}
	}
}

// Transmit implements ring.Port: it delivers frames to the peer's rx ring.
func (p *Port) Transmit(frames []ring.Frame) (int, error) {
	if p.closed.Load() {
		return 0, ring.ErrClosed
	}
	q := p.peer
	if q == nil || q.closed.Load() {
		return 0, ring.ErrClosed
	}
	fill, rx := q.fill, q.rx
	fcons := fill.cons.Load()
	favail := fill.prod.Load() - fcons
	rprod := rx.prod.Load()
	rroom := uint32(len(rx.d)) - (rprod - rx.cons.Load())
	chunk := uint32(q.pool.ChunkSize())
	hr := uint32(q.pool.DefaultHeadroom())
	mem := q.pool.Mem()
	n, sent := 0, 0
	for ; n < len(frames); n++ {
		f := &frames[n]
		l := uint32(f.Len())
		if hr+l > chunk {
			p.TxTooBig++
			ring.Release(frames[n : n+1])
			continue
		}
		if favail == 0 || rroom == 0 {
			p.TxCopyFail++
			break
		}
		d := fill.d[fcons&fill.mask]
		fcons++
		favail--
		base := d.idx * chunk
		copy(mem[base+hr:base+hr+l], f.Bytes())
		rx.d[rprod&rx.mask] = desc{idx: d.idx, off: hr, n: l}
		rprod++
		rroom--
		sent++
		ring.Release(frames[n : n+1])
	}
	fill.cons.Store(fcons)
	rx.prod.Store(rprod)
	p.TxPackets += uint64(sent)
	if sent > 0 {
		select {
		case q.bell <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// Release implements ring.Port.
func (p *Port) Release(frames []ring.Frame) { ring.Release(frames) }

// Alloc implements ring.Port.
func (p *Port) Alloc(frames []ring.Frame) int {
	for i := range frames {
		f, ok := p.pool.Get()
		if !ok {
			return i
		}
		frames[i] = f
	}
	return len(frames)
}

// Complete implements ring.Port; Transmit completes synchronously, so there
// is never anything to reap.
func (p *Port) Complete() int { return 0 }

// Pool implements ring.Port.
func (p *Port) Pool() *ring.Pool { return p.pool }

// Close implements ring.Port. It wakes a waiting Receive.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return ring.ErrClosed
	}
	select {
	case p.bell <- struct{}{}:
	default:
	}
	return nil
}

// Inject copies pkt into a fresh frame and transmits it to the peer (a test
// generator's helper); it reports whether the peer took it.
func (p *Port) Inject(pkt []byte) bool {
	var one [1]ring.Frame
	if p.Alloc(one[:]) == 0 {
		return false
	}
	if !one[0].SetLen(len(pkt)) {
		p.Release(one[:])
		return false
	}
	copy(one[0].Bytes(), pkt)
	if n, _ := p.Transmit(one[:]); n == 0 {
		p.Release(one[:])
		return false
	}
	return true
}

// Drain receives everything pending, calls fn with each packet's bytes
// (valid only during the call) and releases the frames; it returns the count.
func (p *Port) Drain(fn func(pkt []byte)) int {
	var batch [ring.IdealBatchSize]ring.Frame
	total := 0
	for {
		n, err := p.Receive(batch[:])
		if err != nil || n == 0 {
			return total
		}
		for i := 0; i < n; i++ {
			if fn != nil {
				fn(batch[i].Bytes())
			}
		}
		p.Release(batch[:n])
		total += n
	}
}
