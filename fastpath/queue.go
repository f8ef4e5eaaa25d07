package fastpath

import "sync/atomic"

// queueCell is one slot of a boundedQueue. seq tells producers and consumers
// whose turn it is: seq == pos means free for the producer of ticket pos,
// seq == pos+1 means filled for the consumer of ticket pos.
type queueCell[T any] struct {
	seq atomic.Uint64
	val T
}

// boundedQueue is a fixed-capacity lock-free multi-producer multi-consumer
// FIFO (the sequence-numbered ring described by D. Vyukov). Push and pop
// never block and never allocate; push fails when the queue is full and pop
// when it is empty. With one producer and one consumer each operation is one
// uncontended compare-and-swap and two atomic loads.
type boundedQueue[T any] struct {
	_     [cacheLine]byte
	enq   atomic.Uint64
	_     [cacheLine - 8]byte
	deq   atomic.Uint64
	_     [cacheLine - 8]byte
	mask  uint64
	cells []queueCell[T]
}

// init sizes q to the power of two at or above n (at least 2).
func (q *boundedQueue[T]) init(n int) {
	size := 2
	for size < n {
		size <<= 1
	}
	q.cells = make([]queueCell[T], size)
	for i := range q.cells {
		q.cells[i].seq.Store(uint64(i))
	}
	q.mask = uint64(size - 1)
}

// push appends *v; false when full.
func (q *boundedQueue[T]) push(v *T) bool {
	pos := q.enq.Load()
	for {
		c := &q.cells[pos&q.mask]
		seq := c.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			if q.enq.CompareAndSwap(pos, pos+1) {
				c.val = *v
				c.seq.Store(pos + 1)
				return true
			}
			pos = q.enq.Load()
		case d < 0:
			return false
		default:
			pos = q.enq.Load()
		}
	}
}

// pop removes the oldest element into *v; false when empty.
func (q *boundedQueue[T]) pop(v *T) bool {
	pos := q.deq.Load()
	for {
		c := &q.cells[pos&q.mask]
		seq := c.seq.Load()
		switch d := int64(seq - (pos + 1)); {
		case d == 0:
			if q.deq.CompareAndSwap(pos, pos+1) {
				*v = c.val
				var zero T
				c.val = zero
				c.seq.Store(pos + q.mask + 1)
				return true
			}
			pos = q.deq.Load()
		case d < 0:
			return false
		default:
			pos = q.deq.Load()
		}
	}
}

// len returns an instantaneous (racy but safe) element count.
func (q *boundedQueue[T]) len() int {
	d := int64(q.enq.Load() - q.deq.Load())
	if d < 0 {
		return 0
	}
	return int(d)
}
