// Package veth holds the veth end-to-end benchmark (veth_test.go): a traffic
// generator (netsniff-ng trafgen), the device under test and a sink, each in
// a network namespace, comparing rloc as an ITR on AF_XDP with the Linux
// kernel encapsulating the same traffic into VXLAN and with plain kernel
// forwarding. Run it as root:
//
//	go test -run '^$' -bench Veth -benchtime 1x ./bench/veth
//
// Environment knobs for rloc's variant (defaults are rlocd's own, its rings
// and UMEM sized by router.XDPOptions.XSK for two interfaces):
// SPIN=1 makes the worker poll without ever sleeping, NICE=n sets its
// thread's nice value, RINGSIZE=n sizes the rings as rlocd's xdp.ring_size
// n (and the UMEM as its default xdp.frames, 2n chunks per interface),
// BIGRING=1 uses 16384 UMEM frames and 8192-entry fill/rx rings, KICKDELAY=d (a Go duration) lets the worker hold its
// transmit kick for up to d to gather 32 frames (fastpath.Config.KickDelay),
// NEIGHCHURN=n makes n neighbour-table events a second in the DUT while
// trafgen runs (a neighbour moving between REACHABLE and STALE, new IPv6
// neighbours: none changes a next hop) and logs the offload's epochs, and
// MAPCHURN=n installs n map-cache entries a second in rloc (/24s of
// 10.200.0.0/16, which no frame goes to), as Map-Replies do (MAPBATCH=k:
// each change a batch of k /32s of it, as a bulk load), and
// NEIGHLOSS=n adds and deletes n usable neighbour entries a second on the
// DUT's out0 (hosts no frame goes to), as the kernel's garbage collector
// does, and ROUTECHURN=n adds and deletes n routes a second in the DUT
// (/24s of 198.18.0.0/16 via out0, which no frame goes to), as a routing
// daemon does. While rloc runs with the offload, the benchmark sweeps it
// once a second, as rlocd does.
// Each load runs rloc twice: rloc-itr with ring/xsk's
// default fill policy (fill rings kept full) and rloc-itr-adaptivefill with
// the adaptive one (xsk.Options.AdaptiveFill), then io-only runs rloc's
// AF_XDP sockets forwarding frames unchanged (no LISP work: the ceiling of
// the path). rloc's DUT CPU is its worker thread's CPU time
// (the sink's softirq on CPU 1 runs inside it) plus softirq on CPU 0.
//
// BenchmarkVethETR (etr_test.go) is the same for the ETR: the generator
// sends LISP-encapsulated frames to the DUT's in0, which delivers their inner
// packets to the sink; the kernel variant decapsulates VXLAN-GPE, and
// rloc-etr-offload runs the decap offload (docs/offload.md):
//
//	go test -run '^$' -bench VethETR -benchtime 1x ./bench/veth
//
// BenchmarkVethRTR (etr_test.go) sends the same frames to an EID whose RLOC
// is the sink: the DUT re-encapsulates them as an RTR. The kernel variant
// uses one VXLAN-GPE device in and out; rloc-rtr-offload runs the RTR's
// offload (offload_reencap4):
//
//	go test -run '^$' -bench '^BenchmarkVethRTR$' -benchtime 1x ./bench/veth
//
// BenchmarkVethRTREID6 is the same for an IPv6 EID (the offload's reencap6):
//
//	go test -run '^$' -bench '^BenchmarkVethRTREID6$' -benchtime 1x ./bench/veth
//
// BenchmarkVethRTR6 is BenchmarkVethRTR over an IPv6 underlay: LISP over
// IPv6 in and out (the offload's reencap entry for outer IPv6; the
// kernel's VXLAN-GPE device with zero UDP checksums over IPv6):
//
//	go test -run '^$' -bench '^BenchmarkVethRTR6$' -benchtime 1x ./bench/veth
//
// BenchmarkVethEID6 (eid6_test.go) is BenchmarkVeth for IPv6 EIDs over the
// IPv4 RLOC: kernel VXLAN, rloc-itr and rloc-itr-offload (offload_v6):
//
//	go test -run '^$' -bench VethEID6 -benchtime 1x ./bench/veth
//
// The figures and their analysis are in bench/results/veth.md.
package veth
