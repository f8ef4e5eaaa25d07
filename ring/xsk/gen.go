package xsk

// The steering program is compiled from bpf/steer.c; the object and the Go
// bindings (steer_bpfel.go, steer_bpfel.o) are committed so building needs no
// clang. Regenerate with `go generate ./ring/xsk` (needs clang and
// llvm-strip: scripts/deps.sh clang llvm-strip).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type steer_config -type offload_key -type offload6_key -type offload_val -type decap_key -type decap6_key -type decap_val -type reencap_key -type reencap6_key -type reencap_val steer bpf/steer.c
