// Package cache is rloc's map-cache: the EID-to-RLOC mappings that every
// fast-path worker reads for every packet and that only the slow path writes.
//
// # Reading: RCU, no locks, no allocations
//
// The cache is a set of shards, each an immutable snapshot behind an
// atomic.Pointer. A directory (itself immutable: a direct-mapped array by
// the instance-ID's low bits and a map for collisions, replaced when an
// instance-ID appears) maps the instance-ID to its shards: one unicast IP
// table for both families (bart keeps a root per family), one MAC table,
// and one multicast table per family (IPv4 is not split by prefix range:
// see cache.go). A lookup is: load the instance in the instance-ID's direct
// slot, kept in the Cache itself, and compare its instance-ID (a Reader
// remembers its last instance, which is never removed nor replaced; the
// directory is loaded only for an instance-ID whose slot another one
// holds), load the shard's pointer, walk a gaissmai/bart trie (the Fast
// variant, longest-prefix match). Nothing is locked, nothing allocated, and the
// reader never waits for the writer nor does expiry work.
//
// Entries are immutable once published; an update publishes a new *Entry.
// A lookup does not read or write the entry it returns: the trie value holds
// the entry's small activity id beside the pointer, and the lookup sets that
// bit in an activity bitmap (Cache.Lookup: one shared bitmap, tested before
// it is set; a worker's Reader: a private list of ids, filtered so a busy
// entry is noted once per interval, flushed into the Reader's own bitmap at
// the end of each batch). The writer folds the bitmaps into the entries'
// activity epochs (Config.ActivityTick) before every Apply, Expire and
// Refreshable, so aging and eviction see what they saw before (activity.go).
// The RLOC choice is precomputed:
// each interned locator set carries a 256-slot table of RLOC indices filled
// by weight among the reachable RLOCs of the best priority, so Select is one
// multiply and one index.
//
// # Writing: copy-on-write batches
//
// One writer at a time (a mutex; the slow path) applies a batch of updates.
// The first change to a shard in a batch starts from its published trie:
// deletes use bart's persistent delete, which copies only the path it
// touches, and inserts are collected in a small pending trie of the batch
// that one persistent union merges in when the batch is published, so a
// path that several of the batch's inserts share is copied once; when a
// batch changes a shard a lot (more than about size/32 updates) the
// writer clones the shard once and updates the private copy in place, and an
// empty shard is filled in place from the start (bulk loads). At the end of
// the batch every touched shard is published with one atomic store, so a
// reader sees either none or all of a batch's changes to a shard. Old
// snapshots are reclaimed by the garbage collector once no reader holds them
// (Go's GC plays the role of RCU's grace period). Splitting IPv4 by prefix
// range would keep each copied path inside a small sub-table and cut the
// writer's cost per update, at no gain for lookups (see cache.go).
//
// Multicast shards, (S,G) and (*,G) entries of one family, are rebuilt whole
// when a batch touches them: a trie of G-prefixes whose nodes hold a trie of
// S-prefixes, a link to the nearest covering G-prefix that has (S,G)
// entries, and the nearest (*,G) entry.
//
// # Bounds and aging
//
// The writer keeps two expiry heaps (positive and negative entries; static
// entries are in neither). Expire removes what is due; Refreshable lists
// entries about to expire that were used recently, for the slow path to
// re-request. When the cache is full the writer evicts the least recently
// used non-static entry found by a CLOCK-like sweep over the heap arrays
// (idle entries first); negative entries have their own smaller bound so a
// flood of misses only evicts other negative entries. Every eviction is
// counted. Locator sets are interned (with their header templates, built
// once per set by Config.BuildTemplate, each numbered while its set is
// installed: RLOC.TemplateSlot, what a fast path keys its memo of RLOCs
// by) and reference-counted, and an entry is 48 bytes, so a million
// prefixes fit in about 122 MiB.
package cache
