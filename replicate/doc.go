// Package replicate is rloc's multicast replication logic: what to copy a
// multicast packet to, how to make the copies, which underlay group an
// overlay group travels on, and the replication-engineering tree of RTRs.
//
// # Plans
//
// A mapping for (S-EID,G) or (*,G) carries a Replication List Entry, an RLE
// (RFC 8060 §4.9): a list of RTR and ETR RLOCs, each with a level. An ITR
// replicates to the entries of the lowest level present; an RTR at level n
// replicates to the entries of the next level up, the lowest level above n
// present in the list (draft-coras-lisp-re; ETRs commonly register at level
// 128). NewPlan turns an RLE into a Plan for one router: it validates the
// list (size bound, duplicates, loops, address kinds), keeps the entries
// this router replicates to, leaves out the router's own RLOCs, and builds
// one outer-header template per copy. Plans are immutable and built when a
// mapping is installed, so the per-packet work is only the copies.
//
// # Copies
//
// Plan.Replicate writes one encapsulated copy of an inner packet per Copy
// into buffers taken from an Allocator (the fast path implements it over
// its frame pool), patching each copy's outer header with wire.PatchOuter.
// It does not allocate.
//
// # Overlay group to underlay group
//
// An ETR on a multicast-capable underlay picks the underlay group (G-RLOC)
// for an overlay group either by hashing (HashGroup: SHA-256 over
// (S-EID,G-EID) or G-EID, mapped into a configured range, the same on every
// ETR) or by asking the mapping system for the distinguished-name EID
// "group-<G-EID>" (GroupNameEID, ParseGroupRecord, GroupMap for G-EID
// ranges). See docs/multicast.md.
//
// # Replication trees
//
// Tree holds the replication-engineering state of one (S-EID,G): the RTRs
// and their levels, who joined whom, parent choice for joining ETRs and
// RTRs, re-parenting after a failure, make-before-break on a graceful
// departure, loop checks, and a printable form.
//
// This package imports only the standard library and rloc's wire and cache
// packages.
package replicate
