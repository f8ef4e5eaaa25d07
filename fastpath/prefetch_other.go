//go:build !amd64 && !arm64

package fastpath

import "unsafe"

// prefetch does nothing on this architecture (see prefetch_asm.go).
func prefetch(unsafe.Pointer) {}

// prefetchEach does nothing on this architecture (see prefetch_asm.go).
func prefetchEach(unsafe.Pointer, int, uintptr) {}

// prefetchSets does nothing on this architecture (see prefetch_asm.go).
func prefetchSets(unsafe.Pointer, unsafe.Pointer, int, uintptr) {}
