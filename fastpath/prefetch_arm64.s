#include "textflag.h"

// func prefetch(p unsafe.Pointer)
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET

// func prefetchEach(p unsafe.Pointer, n int, stride uintptr)
TEXT ·prefetchEach(SB), NOSPLIT|NOFRAME, $0-24
	MOVD p+0(FP), R0
	MOVD n+8(FP), R1
	MOVD stride+16(FP), R2
	CMP $0, R1
	BLE done
loop:
	MOVD (R0), R3
	PRFM (R3), PLDL1KEEP
	ADD R2, R0, R0
	SUB $1, R1, R1
	CBNZ R1, loop
done:
	RET

// func prefetchSets(base unsafe.Pointer, p unsafe.Pointer, n int, stride uintptr)
TEXT ·prefetchSets(SB), NOSPLIT|NOFRAME, $0-32
	MOVD base+0(FP), R4
	MOVD p+8(FP), R0
	MOVD n+16(FP), R1
	MOVD stride+24(FP), R2
	SUB $64, R4, R4
	CMP $0, R1
	BLE done
loop:
	MOVWU (R0), R3
	ADD R3<<6, R4, R3
	PRFM (R3), PLDL1KEEP
	ADD R2, R0, R0
	SUB $1, R1, R1
	CBNZ R1, loop
done:
	RET
