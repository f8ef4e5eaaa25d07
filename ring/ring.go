// Package ring is rloc's batch packet I/O contract: a Port receives and
// transmits batches of Frames, wireguard-go style (the caller owns the batch
// arrays, a call fills or drains them, nothing allocates per batch).
// Two backends implement it: ring/xsk on AF_XDP sockets and ring/mem,
// in-memory rings for tests and pipeline benchmarks.
//
// # Frames and headroom
//
// A Frame is a packet inside a fixed-size chunk of a Pool's memory. Every
// frame a Port hands out (received or allocated) starts at least Headroom
// bytes into its chunk, so an encapsulating fast path grows the frame at the
// front with Push and writes the outer headers in place; the payload never
// moves. Decapsulation shrinks the front with Pull.
//
// # Ownership rules
//
// A chunk has exactly one owner at any time: its Pool (free), the kernel or
// the peer (on a fill or transmit ring), or the caller (a Frame it got from
// Receive or Alloc). The rules:
//
//  1. Receive and Alloc give the caller the frames they return.
//  2. Transmit(frames) takes the first n frames it accepts (its return
//     value); frames[n:] stay with the caller, who must retry them or Release
//     them. A frame taken by Transmit must not be touched again.
//  3. Release gives frames back to their Pool (an xsk Port puts them on its
//     fill ring in the next Receive). Every frame the caller owns must end in
//     Transmit or Release, or the Pool runs dry.
//  4. Complete reaps frames whose transmission finished and returns them to
//     their Pool. Call it once per loop iteration; Transmit also reaps when
//     its ring is full.
//  5. A Frame may be transmitted on any Port. If the Port's Pool owns the
//     frame's chunk (same Port, or another socket on a shared AF_XDP UMEM)
//     the chunk itself goes on the transmit ring; otherwise the Port copies
//     the bytes into one of its own chunks and releases the original to its
//     Pool. Keep the ports one worker forwards between on one Pool (xsk:
//     one Group per worker) to forward without copying.
//  6. A Pool, and every Port drawing on it, belongs to one goroutine (the
//     worker). Nothing here locks; only Close may be called from elsewhere,
//     and only after the worker stopped using the Port.
//
// Frames are plain values: copying a Frame does not copy the packet, and two
// copies of one Frame must not both be transmitted or released. A Pool counts
// releases of chunks it already holds (DoubleFrees) and ignores them rather
// than corrupting its free list.
package ring

import (
	"errors"
	"time"
	"unsafe"
)

// Headroom is the minimum number of bytes every Frame handed out by a Port
// has in front of its packet data: room for an outer Ethernet, IPv6, UDP and
// LISP header (14+40+8+8 = 70 bytes, RFC 9300 §5.1) with space to spare.
const Headroom = 128

// IdealBatchSize is the batch size the fast path uses per Receive and
// Transmit call.
const IdealBatchSize = 64

// ErrClosed is returned by a Port's operations after Close.
var ErrClosed = errors.New("ring: port closed")

// Port is a batch packet I/O endpoint: one NIC queue (ring/xsk) or one end of
// an in-memory link (ring/mem). See the package comment for the ownership
// rules.
type Port interface {
	// Receive fills frames[:n] with up to len(frames) received frames without
	// blocking and returns n (0 when nothing is pending).
	Receive(frames []Frame) (n int, err error)
	// Wait blocks until Receive has frames, the timeout passes (timeout < 0
	// waits without limit, 0 only checks) or the Port is closed. It reports
	// whether frames are ready.
	Wait(timeout time.Duration) (ready bool, err error)
	// Transmit queues frames for transmission and returns how many it took:
	// frames[:n] now belong to the Port, frames[n:] still to the caller.
	Transmit(frames []Frame) (n int, err error)
	// Release returns frames the caller will not transmit to their Pool.
	Release(frames []Frame)
	// Alloc fills frames[:n] with empty frames (Len 0, at least Headroom
	// bytes of headroom) from the Port's Pool and returns n, which is less
	// than len(frames) when the Pool runs short.
	Alloc(frames []Frame) int
	// Complete reaps finished transmissions, returning their chunks to the
	// Pool, and reports how many it reaped.
	Complete() int
	// Pool returns the Pool the Port's frames come from.
	Pool() *Pool
	// Close releases the Port's resources; later calls fail with ErrClosed.
	Close() error
}

// Frame is one packet in a Pool chunk: the bytes chunk[off : off+n].
// The zero Frame is empty and belongs to no Pool.
type Frame struct {
	chunk []byte
	pool  *Pool
	idx   uint32
	off   uint32
	n     uint32
}

// Bytes returns the packet data. The slice aliases the chunk: it stays valid
// while the caller owns the frame.
func (f *Frame) Bytes() []byte { return f.chunk[f.off : f.off+f.n : len(f.chunk)] }

// Len returns the packet length.
func (f *Frame) Len() int { return int(f.n) }

// Headroom returns how many bytes Push can still add at the front.
func (f *Frame) Headroom() int { return int(f.off) }

// Tailroom returns how many bytes SetLen can still add at the end.
func (f *Frame) Tailroom() int { return len(f.chunk) - int(f.off+f.n) }

// Cap returns the largest packet the frame's chunk can hold at its current
// offset (Len plus Tailroom).
func (f *Frame) Cap() int { return len(f.chunk) - int(f.off) }

// Push grows the packet by k bytes at the front (for an outer header) and
// returns the new packet bytes, whose first k bytes are the new (stale)
// header room. It returns nil and leaves the frame unchanged when k is
// negative or larger than Headroom.
func (f *Frame) Push(k int) []byte {
	if k < 0 || k > int(f.off) {
		return nil
	}
	f.off -= uint32(k)
	f.n += uint32(k)
	return f.Bytes()
}

// Pull drops k bytes from the front of the packet (decapsulation) and reports
// whether it could: false, with the frame unchanged, when k is negative or
// larger than Len.
func (f *Frame) Pull(k int) bool {
	if k < 0 || k > int(f.n) {
		return false
	}
	f.off += uint32(k)
	f.n -= uint32(k)
	return true
}

// SetLen sets the packet length, truncating or extending at the end, and
// reports whether n fits (0 <= n <= Cap); the frame is unchanged otherwise.
func (f *Frame) SetLen(n int) bool {
	if n < 0 || n > f.Cap() {
		return false
	}
	f.n = uint32(n)
	return true
}

// Reframe moves the start of the packet by d bytes (negative: into the
// headroom, for outer headers; positive: dropping bytes at the front) and
// sets its length to n, in one step: Pull or Push, then SetLen. It returns
// the new packet bytes, or nil, leaving the frame unchanged, when the
// result does not lie within the chunk.
func (f *Frame) Reframe(d, n int) []byte {
	o := int(f.off) + d
	if uint(o) > uint(len(f.chunk)) { // o < 0 or past the chunk
		return nil
	}
	c := f.chunk[o:len(f.chunk):len(f.chunk)] // no check left: o <= len
	if uint(n) > uint(len(c)) {               // n < 0 or past the chunk
		return nil
	}
	f.off, f.n = uint32(o), uint32(n)
	return c[:n]
}

// Reset empties the frame and puts its start at headroom bytes into the
// chunk; it reports false, leaving the frame unchanged, when headroom is out
// of the chunk.
func (f *Frame) Reset(headroom int) bool {
	if headroom < 0 || headroom > len(f.chunk) {
		return false
	}
	f.off = uint32(headroom)
	f.n = 0
	return true
}

// Owner returns the Pool the frame's chunk belongs to (nil for the zero Frame).
func (f *Frame) Owner() *Pool { return f.pool }

// Index returns the chunk's index in its Pool; backends turn it into a ring
// address (Index*ChunkSize + Offset).
func (f *Frame) Index() uint32 { return f.idx }

// Offset returns where the packet starts inside its chunk.
func (f *Frame) Offset() int { return int(f.off) }

// Pool is a fixed set of equal chunks carved from one memory region (an
// AF_XDP UMEM or a heap slab) with a LIFO free list. It is not safe for
// concurrent use: a Pool belongs to one worker goroutine.
type Pool struct {
	// The pads keep the fields written per packet (free, state) off the
	// cache lines of neighbouring allocations, such as another worker's
	// Pool: without them two workers' pools allocated one after the other
	// shared a line and slowed each other on every packet.
	_         [cacheLine]byte
	mem       []byte
	chunkSize uint32
	headroom  uint32
	free      []uint32
	state     []uint8 // 1 when the chunk is on the free list

	// DoubleFrees counts Put calls for chunks already free (ignored).
	DoubleFrees uint64
	// Foreign counts Put calls for frames of another Pool (ignored).
	Foreign uint64
	_       [cacheLine]byte
}

// cacheLine is the padding unit between data of different workers: two
// 64-byte lines, since x86 prefetches lines in pairs (as fastpath's).
const cacheLine = 128

// NewPool makes a Pool over mem with chunks of chunkSize bytes; frames it
// hands out start headroom bytes into their chunk. All chunks start free.
func NewPool(mem []byte, chunkSize, headroom int) (*Pool, error) {
	if chunkSize <= 0 || len(mem) < chunkSize {
		return nil, errors.New("ring: pool memory smaller than one chunk")
	}
	if headroom < Headroom || headroom >= chunkSize {
		return nil, errors.New("ring: pool headroom out of range")
	}
	n := len(mem) / chunkSize
	if uint64(n)*uint64(chunkSize) > 1<<32 {
		return nil, errors.New("ring: pool larger than 4 GiB")
	}
	p := &Pool{
		mem:       mem[:n*chunkSize],
		chunkSize: uint32(chunkSize),
		headroom:  uint32(headroom),
		free:      make([]uint32, n),
		state:     make([]uint8, n),
	}
	for i := range p.free {
		p.free[i] = uint32(n - 1 - i)
		p.state[i] = 1
	}
	return p, nil
}

// ChunkSize returns the size of each chunk.
func (p *Pool) ChunkSize() int { return int(p.chunkSize) }

// NumChunks returns the number of chunks in the Pool.
func (p *Pool) NumChunks() int { return len(p.state) }

// DefaultHeadroom returns the headroom of frames from Get.
func (p *Pool) DefaultHeadroom() int { return int(p.headroom) }

// Free returns how many chunks are on the free list.
func (p *Pool) Free() int { return len(p.free) }

// Mem returns the Pool's whole memory region (for registering it as a UMEM).
func (p *Pool) Mem() []byte { return p.mem }

// Get takes a free chunk and returns it as an empty frame with the default
// headroom; ok is false when the Pool is empty.
func (p *Pool) Get() (f Frame, ok bool) {
	n := len(p.free)
	if n == 0 {
		return Frame{}, false
	}
	idx := p.free[n-1]
	p.free = p.free[:n-1]
	p.state[idx] = 0
	return p.frame(idx, p.headroom, 0), true
}

// GetIndex returns a frame for chunk idx holding bytes [off, off+n); a
// backend uses it for a chunk the kernel or a peer hands back. It does not
// touch the free list: the chunk must be one the backend took with Take.
// ok is false when idx, off or n are out of range.
func (p *Pool) GetIndex(idx uint32, off, n int) (f Frame, ok bool) {
	if int(idx) >= len(p.state) || off < 0 || n < 0 || off+n > int(p.chunkSize) {
		return Frame{}, false
	}
	return p.frame(idx, uint32(off), uint32(n)), true
}

// Take removes a free chunk from the free list without making a frame (for
// a backend filling a kernel ring) and returns its index.
func (p *Pool) Take() (idx uint32, ok bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	idx = p.free[n-1]
	p.free = p.free[:n-1]
	p.state[idx] = 0
	return idx, true
}

// PutIndex returns chunk idx to the free list (a backend reaping a
// completion). It ignores and counts an index out of range or already free.
func (p *Pool) PutIndex(idx uint32) {
	if int(idx) >= len(p.state) || p.state[idx] != 0 {
		p.DoubleFrees++
		return
	}
	p.state[idx] = 1
	p.free = append(p.free, idx)
}

// Put returns a frame's chunk to the free list. Frames of another Pool and
// chunks already free are counted and ignored.
func (p *Pool) Put(f *Frame) {
	if f.pool != p {
		p.Foreign++
		return
	}
	p.PutIndex(f.idx)
}

// Owns reports whether f's chunk belongs to p.
func (p *Pool) Owns(f *Frame) bool { return f.pool == p }

func (p *Pool) frame(idx, off, n uint32) Frame {
	base := idx * p.chunkSize
	return Frame{
		chunk: p.mem[base : base+p.chunkSize : base+p.chunkSize],
		pool:  p,
		idx:   idx,
		off:   off,
		n:     n,
	}
}

// Release returns each frame to its own Pool (frames of different Pools may
// be mixed). Zero frames are skipped.
func Release(frames []Frame) {
	for i := range frames {
		if p := frames[i].pool; p != nil {
			p.Put(&frames[i])
		}
		frames[i] = Frame{}
	}
}

// CopyInto copies src's packet into dst (an empty frame from Alloc), keeping
// dst's headroom, and reports false when it does not fit.
func CopyInto(dst, src *Frame) bool {
	if !dst.SetLen(src.Len()) {
		return false
	}
	copy(dst.Bytes(), src.Bytes())
	return true
}

// SameMemory reports whether two byte slices share their first byte (used by
// tests to check that forwarding did not copy).
func SameMemory(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}
