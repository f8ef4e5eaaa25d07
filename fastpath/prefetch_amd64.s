#include "textflag.h"

// func prefetch(p unsafe.Pointer)
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	RET

// func prefetchEach(p unsafe.Pointer, n int, stride uintptr)
TEXT ·prefetchEach(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), CX
	MOVQ stride+16(FP), DX
	TESTQ CX, CX
	JLE done
loop:
	MOVQ (AX), BX
	PREFETCHT0 (BX)
	ADDQ DX, AX
	DECQ CX
	JNZ loop
done:
	RET

// func prefetchSets(base unsafe.Pointer, p unsafe.Pointer, n int, stride uintptr)
TEXT ·prefetchSets(SB), NOSPLIT|NOFRAME, $0-32
	MOVQ base+0(FP), SI
	MOVQ p+8(FP), AX
	MOVQ n+16(FP), CX
	MOVQ stride+24(FP), DX
	TESTQ CX, CX
	JLE done
loop:
	MOVL (AX), BX
	SHLQ $6, BX
	PREFETCHT0 -64(SI)(BX*1)
	ADDQ DX, AX
	DECQ CX
	JNZ loop
done:
	RET
