package xsk

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/rloc-router/rloc/ring"
)

// The steering program is a ring.OffloadTable (site mode).
var _ ring.OffloadTable = (*Program)(nil)

// PutOffload adds or replaces the offload entry of e's flow (bpf/steer.c,
// offload_v4; an IPv6 front with e.V6). The map holds 65536 flows: when it is full the error wraps
// the kernel's E2BIG, and a sweep (SweepOffload) makes room.
func (p *Program) PutOffload(e *ring.OffloadEntry) error {
	if e.Ifindex <= 0 {
		return fmt.Errorf("xsk: offload entry without an egress interface")
	}
	k := steerOffloadKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), Bkt: e.Bucket}
	v := steerOffloadVal{Epoch: e.Epoch, Ifindex: uint32(e.Ifindex), CsBase: e.CsBase, MaxInner: e.MaxInner}
	if e.Nonce {
		v.Nonce = 1
	}
	if e.V6 {
		v.V6 = 1
	}
	copy(v.Front[:], e.Front[:])
	if err := p.objs.Offload.Put(k, v); err != nil {
		return fmt.Errorf("xsk: put offload entry: %w", err)
	}
	return nil
}

// SetOffload sets the offload epoch (0: off) and the flow hash seed.
func (p *Program) SetOffload(epoch, seed uint32) error {
	p.cfg.Epoch, p.cfg.Seed = epoch, seed
	if err := p.objs.Config.Put(uint32(0), p.cfg); err != nil {
		return fmt.Errorf("xsk: write program config: %w", err)
	}
	return nil
}

// SweepOffload visits the offload entries and deletes those keep rejects.
// It reads and deletes them in batches (BPF_MAP_LOOKUP_BATCH,
// BPF_MAP_DELETE_BATCH): a few system calls for a full map instead of two per
// entry: 10 ms for 49152 entries instead of 130 (BenchmarkSweepOffload).
// A kernel without batches (before 5.6) is walked key by key.
func (p *Program) SweepOffload(keep func(dst [4]byte, bucket uint8, epoch uint32, hits uint64) bool) (int, error) {
	var drop []steerOffloadKey
	visit := func(k *steerOffloadKey, v *steerOffloadVal) {
		var dst [4]byte
		binary.NativeEndian.PutUint32(dst[:], k.Dst)
		if !keep(dst, k.Bkt, v.Epoch, v.Hits) {
			drop = append(drop, *k)
		}
	}
	if err := p.sweepBatches(visit); err != nil {
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return 0, fmt.Errorf("xsk: sweep offload entries: %w", err)
		}
		drop = drop[:0]
		if err := p.sweepKeys(visit); err != nil {
			return 0, fmt.Errorf("xsk: sweep offload entries: %w", err)
		}
	}
	if len(drop) == 0 {
		return 0, nil
	}
	n, err := p.objs.Offload.BatchDelete(drop, nil)
	if err == nil || !errors.Is(err, ebpf.ErrNotSupported) {
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("xsk: delete offload entries: %w", err)
		}
		return n, nil
	}
	n = 0
	for _, k := range drop {
		if err := p.objs.Offload.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("xsk: delete offload entry: %w", err)
		}
		n++
	}
	return n, nil
}

// sweepBatch is how many offload entries one batch system call reads.
const sweepBatch = 1024

// sweepBatches visits every offload entry, a batch at a time.
func (p *Program) sweepBatches(visit func(*steerOffloadKey, *steerOffloadVal)) error {
	keys := make([]steerOffloadKey, sweepBatch)
	vals := make([]steerOffloadVal, sweepBatch)
	var cur ebpf.MapBatchCursor
	for {
		n, err := p.objs.Offload.BatchLookup(&cur, keys, vals, nil)
		for i := range n {
			visit(&keys[i], &vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil // the end
		}
		if err != nil {
			return err
		}
	}
}

// sweepKeys visits every offload entry, key by key.
func (p *Program) sweepKeys(visit func(*steerOffloadKey, *steerOffloadVal)) error {
	var (
		k steerOffloadKey
		v steerOffloadVal
	)
	it := p.objs.Offload.Iterate()
	for it.Next(&k, &v) {
		visit(&k, &v)
	}
	return it.Err()
}

// TestRun runs the program once over frame in the kernel
// (BPF_PROG_TEST_RUN), as if it arrived on rx queue 0, and returns its XDP
// action and the frame it left; nothing is sent. For tests and tools that
// check what the program does to a frame.
func (p *Program) TestRun(frame []byte) (uint32, []byte, error) {
	act, out, err := p.objs.RlocSteer.Test(frame)
	if err != nil {
		return 0, nil, fmt.Errorf("xsk: test run: %w", err)
	}
	return act, out, nil
}
