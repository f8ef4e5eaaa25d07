// Package fastpath holds rloc's per-core packet workers and the pieces they
// are built from.
//
// # Workers
//
// One worker goroutine runs per configured NIC queue, locked to its OS
// thread and pinned to its core. It runs to completion in a loop:
//
//  1. HoldQueue.Service: take back the held packets whose mappings the slow
//     path installed meanwhile (and drop those held too long);
//  2. receive a batch (64 frames) from its ring.Port;
//  3. classify each frame and encapsulate (ITR/PITR), decapsulate (ETR) or
//     re-encapsulate/replicate (RTR), using the map-cache and the next-hop
//     table (NextHopTable.Resolve) for the outer Ethernet header;
//  4. transmit the batch and WorkerCounters.Publish its counters.
//
// Nothing in the loop allocates, locks, blocks or uses a channel: the
// map-cache and the next-hop table are read through atomic pointers to
// immutable snapshots (read-copy-update), and the worker exchanges messages
// with the slow path only through bounded lock-free queues that it never
// waits on.
//
// # Misses
//
// A map-cache miss copies the packet into the worker's HoldQueue (bounded per
// EID and in total, preallocated buffers) and sends at most one MissEvent per
// EID per retry interval to the slow path (MissQueue, drained by polling).
// When the slow path has installed a mapping it pushes a Release (instance-ID
// and prefix, positive or negative) into the worker's ReleaseQueue; at the
// start of the next batch the worker hands every held packet covered by the
// prefix, in arrival order, back to its loop, which sends it like a fresh
// packet or applies the negative action.
//
// # Counters
//
// Each worker counts into its own WorkerCounters with plain adds (events and
// drops by DropReason) and publishes the changed counters with atomic stores
// once per batch; readers on other goroutines Sum the published copies. An
// atomic add per increment cost an order of magnitude more on these machines (see
// bench/results/fastpath-prep.md).
//
// # Next hops
//
// NextHopTable maps a destination (an RLOC on the core side, an inner
// destination on the site side) to an Adjacency: source and destination MAC,
// egress interface and port. The slow path (slowpath/neigh) keeps it in step
// with the kernel's routes and neighbours over netlink. An AdjIncomplete
// result means the kernel has not resolved the next hop yet: the worker
// passes the packet to the kernel once so ARP/ND happen.
//
// This package imports only the standard library and rloc's wire, cache,
// ring and replicate packages.
package fastpath
