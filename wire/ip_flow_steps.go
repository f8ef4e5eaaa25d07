package wire

// The steps of FlowHash, for a caller that hashes a header it has already
// parsed without going through FlowHash's checks (the fast path's IPv4
// case): FlowHash(pkt, seed) is FlowFinish of FlowMix applied, from
// FlowStart(seed), to the words FlowHash reads in its order. Each inlines.

// FlowStart is FlowHash's starting state for seed.
func FlowStart(seed uint32) uint64 { return uint64(seed)*0x9e3779b97f4a7c15 ^ 0x243f6a8885a308d3 }

// FlowMix mixes the 64-bit word v into the state h.
func FlowMix(h, v uint64) uint64 { return flowMix(h, v) }

// FlowFinish turns the state h into the hash.
func FlowFinish(h uint64) uint32 { return finish(h) }
