// Package nexthop is the fast path's next-hop table and the netlink watcher
// that fills it, kept in one package because one writes what the other reads.
//
// The Table publishes immutable Snapshots (the routes in a bart trie, the
// links with their Ethernet details, the neighbour table) through an atomic
// pointer; workers Resolve against the current one without locking, each
// through its own Cache. The Watcher mirrors the kernel's links, routes
// (main table) and neighbours into a Table over rtnetlink, publishes a new
// Snapshot after each burst of changes, and makes the kernel resolve the
// gateways of routes through the fast path's interfaces by installing them
// as "managed" neighbours (NTF_EXT_MANAGED, Linux 5.16+). Its snapshots
// share one trie, which each burst's route changes update persistently
// (copying only the paths they change), so that a kernel holding an
// Internet table (a million routes) costs a snapshot microseconds for a
// route that moved and nothing more than the neighbour table for a
// neighbour, not a rebuild of every route (BenchmarkWatcherPublish).
//
// Routes through nexthop objects (ip-nexthop(8), as FRR installs them) are
// followed by the gateway and interface the kernel reports with them while
// net.ipv4.nexthop_compat_mode is 1, its default, and the kernel sends them
// again when their object changes. When it is 0 the kernel gives only the
// object's id, which the netlink library does not parse: such routes
// resolve as AdjKernel, are counted (WatcherStats.RoutesWithoutEgress) and
// warned of (TestWatcherNexthopObjects).
package nexthop
