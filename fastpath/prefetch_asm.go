//go:build amd64 || arm64

package fastpath

import "unsafe"

// prefetch asks the CPU to bring the cache line at p closer (x86
// PREFETCHT0, arm64 PRFM PLDL1KEEP) without waiting for it, so that the
// loads of one stage of a batch overlap. p may be any address: a prefetch
// never faults.
//
//go:noescape
func prefetch(p unsafe.Pointer)
