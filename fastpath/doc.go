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
//  3. process the batch of each port stage by stage: parse and classify every
//     frame (taking the flow hash), then look every destination up in the
//     map-cache (through the worker's lookup memo, whose probes of the batch
//     overlap in memory; a memo hit marks the entry active only once per
//     fold interval of the cache's activity marks; for IPv4 destinations its
//     flow memo first gives the next-hop memo entry a packet of the same
//     destination and RLOC-selection bucket was last sent through, with no
//     entry to read), then encapsulate
//     (ITR/PITR; plain IPv4 through encapFast), decapsulate (ETR) or
//     re-encapsulate/replicate (RTR) every packet in arrival order, so each
//     port sends in the order it received. A core batch delivers its
//     packets at once while none before them needed a lookup. The state of
//     each packet travels as a parameter (pktInfo), in a per-batch array.
//     encapFast writes an IPv4 outer header from the next-hop memo's copy
//     (Ethernet header and template, LSBs already in) and patches it (the
//     checksum updated from a per-entry base) in encapLoop, the one loop
//     without calls that flowRun, hopRun and encapVia run (encapRun).
//     While every frame a batch sends leaves by one port whose transmit
//     batch was empty, the frames stay in the receive array and go to the
//     port in one Transmit at the end of the batch (inPlace); any other
//     send keeps each port's order;
//  4. transmit the batch and WorkerCounters.Publish its counters.
//
// A Worker (NewWorker, Config) owns its ports: site ports, each with the
// instance-ID it serves, and core ports. It works on any ring.Port, so the
// same worker runs on ring/mem in tests and benchmarks and on ring/xsk
// sockets (put one worker's sockets in one xsk Group so frames move between
// them without copying). Run locks the goroutine to its thread, pins it to
// Config.CPU and loops over Step, sleeping in the ports' Wait when idle;
// tests call Step directly.
//
// What a worker does with a frame:
//
//   - from a site port (ITR/PITR): validate the inner IPv4/IPv6 header, look
//     up (port instance-ID, destination), pick the RLOC by flow hash
//     (cache.Entry.Select), decrement the inner TTL, copy the entry's
//     prebuilt outer header (OuterConfig.BuildTemplate, installed as the
//     cache's BuildTemplate) into the headroom, patch it (lengths, checksum,
//     UDP source port, TTL and DSCP/ECN from the inner header, nonce, LSBs)
//     and write the Ethernet header of the RLOC's next hop. Negative entries:
//     native forwarding or encapsulation to a PETR (Config.Negative), drop, or
//     send-map-request (handled like a miss).
//   - from a core port (ETR): accept only UDP 4341 to our RLOCs, validate the
//     outer headers and the LISP header, map the instance-ID to its site
//     port, apply TTL = min(outer, inner) and RFC 6040 ECN, strip the outer
//     headers and deliver with the inner destination's next-hop MAC. Echo
//     requests, LSBs and (while the slow path watches them) nonces go to an
//     ObservationRing for the slow path. With Config.RTR,
//     instance-IDs no site port serves are looked up again and
//     re-encapsulated.
//   - path MTU (RFC 9300 §7.1, stateless): an inner IPv4 packet with DF
//     clear that does not fit is encapsulated and the outer IPv4 packet
//     split into two fragments, which the ETR reassembles (reasm.go: a
//     bounded per-worker table, 2 s timeout); behind an IPv6 outer header
//     the inner packet is fragmented instead and each piece encapsulated.
//     Otherwise an ICMP "fragmentation needed" / ICMPv6 "packet too big"
//     goes back out of the ingress site port, rate-limited.
//   - next hop not resolved: the IP packet goes to Config.ToKernel so the
//     kernel runs ARP/ND; ring.Port has no kernel path, so without that hook
//     the packet is dropped as DropNoNeighbour.
//   - multicast destinations: the (S,G)/(*,G) entry's RLE becomes a
//     replicate.Plan (built on the first packet, memoised per locator set)
//     and each copy is encapsulated into a fresh frame (CounterReplicate);
//     an ITR replicates to the lowest RLE level, an RTR to the level above
//     its own. A refused RLE drops the packets as DropNoRoute.
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
// Events that WorkerCounters has no slot for (ECN drops, fragmentation, ICMP
// sent and suppressed, observations lost) are counted as Extra counters,
// read with Worker.Extra.
//
// Each worker counts into its own WorkerCounters with plain adds (events and
// drops by DropReason) and publishes the changed counters with atomic stores
// once per batch; readers on other goroutines Sum the published copies. An
// atomic add per increment cost an order of magnitude more on these machines (see
// bench/results/fastpath-prep.md).
//
// # Next hops
//
// The next-hop table (package fastpath/nexthop) maps a destination (an RLOC
// on the core side, an inner destination on the site side) to an
// Adjacency: source and destination MAC, egress interface and port. Its
// Watcher keeps it in step with the kernel's routes and neighbours over
// netlink. For RLOCs a worker keeps, per RLOC of the map-cache, the
// resolved next hop together with the Ethernet header and the RLOC's outer
// template in one block (rlocHops), so an encapsulation copies one header;
// an entry serves only while the table publishes the snapshot it was
// resolved in, so a changed route or neighbour MAC applies from the next
// batch on. An AdjIncomplete
// result means the kernel has not resolved the next hop yet: the worker
// passes the packet to the kernel once so ARP/ND happen.
//
// This package imports only the standard library and rloc's wire, cache,
// ring, replicate and fastpath/nexthop packages.
package fastpath
