// Package nexthop is the fast path's next-hop table and the netlink watcher
// that fills it, kept in one package because one writes what the other reads.
//
// The Table publishes immutable Snapshots (the routes in a bart trie, the
// links with their Ethernet details, the neighbour table) through an atomic
// pointer; readers Resolve against the current one without locking (rloc's
// workers keep what they resolved in memos of their own, by RLOC and by
// destination). The Watcher mirrors the kernel's links, routes
// (main table) and neighbours into a Table over rtnetlink, publishes a new
// Snapshot after each burst of changes, and makes the kernel resolve the
// gateways of routes through the fast path's interfaces by installing them
// as "managed" neighbours (NTF_EXT_MANAGED, Linux 5.16+). Its snapshots
// share one trie, which each burst's route changes update persistently
// (copying only the paths they change), so that a kernel holding an
// Internet table (a million routes) costs a snapshot microseconds for a
// route that moved and nothing more than the neighbour table for a
// neighbour, not a rebuild of every route (BenchmarkWatcherPublish).
// The trie maps each prefix to its next hop's index (next hops are few, and
// interned: hopTable), and the Watcher's own copy of the main table, which
// it needs for routes of several metrics, holds no pointer and keeps IPv4
// prefixes in 8 bytes (routes.go): a million routes take about 94 MiB of
// heap, watcher and snapshot, where they took 243.
//
// A snapshot the Watcher publishes for at most MovedMax routes (and any
// neighbour entries) names their prefixes and the neighbour destinations
// it lost (Moved): every other address resolves as in the snapshot before
// (MayMove, LostVia), so a holder of thousands of resolved next hops need
// not look each up again after a routing daemon's change of one route.
// A change of a link or a nexthop object, or of more routes, names
// nothing.
//
// Routes through kernel nexthop objects (ip-nexthop(8), as FRR installs
// them) keep the object's id in the trie, and snapshots resolve the
// objects at lookup, as they do links and neighbours: a change of an
// object moves every route through it without touching the routes. The
// watcher reads route and nexthop messages itself (rtmsg.go): the netlink
// library drops a route's RTA_NH_ID and RTA_VIA and has no nexthop
// objects.
//
// A multipath route keeps the id of its set of paths (one set for all the
// routes with the same paths), and a route through a nexthop group its
// object's id; a snapshot resolves a destination through such a set to
// one member, picked by a hash of the destination against the members'
// shares of the hash space by weight (hash-threshold, RFC 2992), among
// the members whose links are up: every packet to one RLOC takes one path.
package nexthop
