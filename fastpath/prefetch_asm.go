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

// prefetchEach prefetches, for i < n, the address held by the pointer at
// p + i*stride (a pointer field of the i-th element of an array): one call
// for a whole stage of a batch instead of one per packet, whose registers
// the caller would spill and reload around each call. Nil pointers are
// prefetched harmlessly.
//
//go:noescape
func prefetchEach(p unsafe.Pointer, n int, stride uintptr)

// prefetchSets prefetches, for i < n, the 64-byte line that the 32-bit
// reference at p + i*stride names in the array of lines at base: line
// ref-1 (a flowRef; 0, naming none, prefetches the line before base,
// harmlessly).
//
//go:noescape
func prefetchSets(base, p unsafe.Pointer, n int, stride uintptr)
