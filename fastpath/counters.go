package fastpath

import "sync/atomic"

// cacheLine is the padding unit that keeps one worker's counters off the
// cache lines of another's. 128 bytes covers the adjacent-line prefetcher of
// current x86 parts as well as 64-byte lines.
const cacheLine = 128

// Counter names one of a worker's event counters (not the drop reasons,
// which have their own enum, DropReason).
type Counter uint8

// Event counters.
const (
	CounterRX        Counter = iota // frames received from the rings
	CounterTX                       // frames handed to the rings for transmission
	CounterEncap                    // packets encapsulated (ITR/PITR)
	CounterDecap                    // packets decapsulated (ETR/PETR)
	CounterReencap                  // packets re-encapsulated (RTR)
	CounterReplicate                // copies produced by replication
	CounterMiss                     // map-cache misses
	CounterHeld                     // packets put in a hold queue
	CounterReleased                 // held packets handed back after resolution
	CounterToKernel                 // packets passed to the kernel (e.g. so ARP/ND happen)
	CounterMissEvent                // MissEvents queued to the slow path
	numEventCounters
)

var counterNames = [numEventCounters]string{
	CounterRX:        "rx",
	CounterTX:        "tx",
	CounterEncap:     "encap",
	CounterDecap:     "decap",
	CounterReencap:   "reencap",
	CounterReplicate: "replicate",
	CounterMiss:      "miss",
	CounterHeld:      "held",
	CounterReleased:  "released",
	CounterToKernel:  "to-kernel",
	CounterMissEvent: "miss-event",
}

// String returns the counter's metric-style name ("rx", "encap", ...).
func (c Counter) String() string {
	if c < numEventCounters {
		return counterNames[c]
	}
	return "counter-?"
}

// DropReason says why a worker dropped a packet (or, for
// DropMissQueueFull, a MissEvent).
type DropReason uint8

// Drop reasons. The Bad* reasons are malformed input (see BadPacket).
const (
	DropNoRoute        DropReason = iota // no map-cache entry and no way to hold
	DropNegative                         // negative map-cache entry whose action is drop
	DropBadEthernet                      // truncated Ethernet header or unknown EtherType
	DropBadIP                            // not IPv4/IPv6, or version field inconsistent
	DropBadIHL                           // IPv4 IHL < 5 or beyond the frame
	DropBadLength                        // IP length field beyond the frame or too short
	DropBadUDP                           // truncated UDP header or bad UDP length
	DropBadLISP                          // truncated LISP data header
	DropWrongIID                         // instance-ID this router does not serve
	DropNotOurRLOC                       // LISP data packet to an address that is not our RLOC
	DropTTLExpired                       // inner TTL/hop limit ran out
	DropMTUExceeded                      // too big, DF set, ICMP sent or suppressed
	DropHoldFullEID                      // the EID's hold queue was full
	DropHoldFullGlobal                   // the worker's hold storage (packets or bytes) was full
	DropHoldNoSlot                       // no hold-table slot free for a new EID
	DropHoldOversize                     // frame larger than a hold buffer
	DropMissQueueFull                    // a MissEvent could not be queued (packet itself still held)
	DropHoldTimeout                      // held longer than the hold time
	DropNoNeighbour                      // next hop unresolved and the kernel path unavailable
	DropTXFull                           // transmit ring full
	DropNoPort                           // next hop leaves through an interface the worker does not own
	DropFragment                         // outer fragment not reassembled: duplicate, overlap, oversize, timeout, no slot (see ExtraReasm*)
	DropNoReceivers                      // decapsulated multicast for a group without receivers in the site (Config.LocalGroups)
	NumDropReasons                       // number of drop reasons
)

var dropNames = [NumDropReasons]string{
	DropNoRoute:        "no-route",
	DropNegative:       "negative-drop",
	DropBadEthernet:    "bad-ethernet",
	DropBadIP:          "bad-ip",
	DropBadIHL:         "bad-ihl",
	DropBadLength:      "bad-length",
	DropBadUDP:         "bad-udp",
	DropBadLISP:        "bad-lisp",
	DropWrongIID:       "wrong-iid",
	DropNotOurRLOC:     "not-our-rloc",
	DropTTLExpired:     "ttl-expired",
	DropMTUExceeded:    "mtu-exceeded",
	DropHoldFullEID:    "hold-full-eid",
	DropHoldFullGlobal: "hold-full-global",
	DropHoldNoSlot:     "hold-no-slot",
	DropHoldOversize:   "hold-oversize",
	DropMissQueueFull:  "miss-queue-full",
	DropHoldTimeout:    "hold-timeout",
	DropNoNeighbour:    "no-neighbour",
	DropTXFull:         "tx-full",
	DropNoPort:         "no-port",
	DropFragment:       "fragment",
	DropNoReceivers:    "no-receivers",
}

// String returns the reason's label value ("no-route", "bad-ihl", ...).
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "drop-?"
}

// BadPacket reports whether r is a malformed-input reason, exported as
// bad-packet rather than as a policy or resource drop.
func (r DropReason) BadPacket() bool {
	switch r {
	case DropBadEthernet, DropBadIP, DropBadIHL, DropBadLength, DropBadUDP, DropBadLISP:
		return true
	}
	return false
}

// numCounters is the number of uint64 slots in Counters: the event counters
// followed by one per drop reason.
const numCounters = int(numEventCounters) + int(NumDropReasons)

// Counters is a flat set of a worker's counters: event counters followed by
// drops per reason. A worker owns one and increments it with plain
// (non-atomic) adds; other goroutines never read it directly but read the
// copy published by WorkerCounters.Publish.
type Counters struct {
	v [numCounters]uint64
}

// Inc adds one to event counter k.
func (c *Counters) Inc(k Counter) { c.v[k]++ }

// Add adds n to event counter k.
func (c *Counters) Add(k Counter, n uint64) { c.v[k] += n }

// Drop counts one drop for reason r.
func (c *Counters) Drop(r DropReason) { c.v[int(numEventCounters)+int(r)]++ }

// DropN counts n drops for reason r.
func (c *Counters) DropN(r DropReason, n uint64) { c.v[int(numEventCounters)+int(r)] += n }

// Get returns event counter k.
func (c *Counters) Get(k Counter) uint64 { return c.v[k] }

// Dropped returns the drops counted for reason r.
func (c *Counters) Dropped(r DropReason) uint64 { return c.v[int(numEventCounters)+int(r)] }

// DroppedTotal returns the sum of drops over every reason.
func (c *Counters) DroppedTotal() uint64 {
	var s uint64
	for _, v := range c.v[numEventCounters:] {
		s += v
	}
	return s
}

// Each calls fn for every counter in a fixed order. For event counters
// reason is ""; for drops name is "dropped" or, for malformed input,
// "bad-packet", and reason is the DropReason's name. The shape maps onto
// Prometheus counters with an optional "reason" label.
func (c *Counters) Each(fn func(name, reason string, v uint64)) {
	for k := Counter(0); k < numEventCounters; k++ {
		fn(k.String(), "", c.v[k])
	}
	for r := DropReason(0); r < NumDropReasons; r++ {
		name := "dropped"
		if r.BadPacket() {
			name = "bad-packet"
		}
		fn(name, r.String(), c.Dropped(r))
	}
}

// add adds every counter of o to c.
func (c *Counters) add(o *Counters) {
	for i := range c.v {
		c.v[i] += o.v[i]
	}
}

// WorkerCounters is one worker's counters together with their published
// copy. The worker increments Local with plain adds and calls Publish once
// per batch; any goroutine calls Snapshot (or Sum) to read the published
// values. Only changed counters are stored, so a batch that touched four
// counters costs four atomic stores, amortised over the batch (see
// bench/results/fastpath-prep.md for the comparison with an atomic add per
// increment). Readers may see a value up to one batch old.
type WorkerCounters struct {
	_ [cacheLine]byte
	// Local is owned by the worker goroutine: no other goroutine may touch it.
	Local Counters
	// shadow is the last published value of Local, owned by the worker.
	shadow Counters
	_      [cacheLine]byte
	pub    [numCounters]atomic.Uint64
	_      [cacheLine]byte
}

// Publish makes the worker's current counts visible to readers. Call it
// from the worker goroutine only, typically once per batch.
func (w *WorkerCounters) Publish() {
	for i := range w.Local.v {
		if v := w.Local.v[i]; v != w.shadow.v[i] {
			w.shadow.v[i] = v
			w.pub[i].Store(v)
		}
	}
}

// Snapshot copies the last published counts into dst. Safe from any
// goroutine.
func (w *WorkerCounters) Snapshot(dst *Counters) {
	for i := range dst.v {
		dst.v[i] = w.pub[i].Load()
	}
}

// Sum returns the published counts of every worker added together. Safe
// from any goroutine.
func Sum(workers []*WorkerCounters) Counters {
	var total, one Counters
	for _, w := range workers {
		if w == nil {
			continue
		}
		w.Snapshot(&one)
		total.add(&one)
	}
	return total
}
