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
	n, err := sweepMap(p.objs.Offload, func(k *steerOffloadKey, v *steerOffloadVal) bool {
		var dst [4]byte
		binary.NativeEndian.PutUint32(dst[:], k.Dst)
		return keep(dst, k.Bkt, v.Epoch, v.Hits)
	})
	if err != nil {
		return n, fmt.Errorf("xsk: sweep offload entries: %w", err)
	}
	return n, nil
}

// The steering program is a ring.DecapTable (core mode).
var _ ring.DecapTable = (*Program)(nil)

// PutDecap adds or replaces the decap entry of e's flow (bpf/steer.c,
// offload_decap4; offload_decap6 with e.V6). The map holds 65536 flows: when it is full the error
// wraps the kernel's E2BIG, and a sweep (SweepDecap) makes room.
func (p *Program) PutDecap(e *ring.DecapEntry) error {
	if e.Ifindex <= 0 {
		return fmt.Errorf("xsk: decap entry without a site interface")
	}
	k := steerDecapKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), Iid: e.IID}
	v := steerDecapVal{Epoch: e.Epoch, Ifindex: uint32(e.Ifindex), Rloc: binary.NativeEndian.Uint32(e.RLOC[:])}
	if e.NonceOK {
		v.NonceOk = 1
	}
	if e.V6 {
		v.V6, v.Rloc = 1, 0
		for i := range v.Rloc6 {
			v.Rloc6[i] = binary.NativeEndian.Uint32(e.RLOC6[4*i:])
		}
	}
	copy(v.Eth[:], e.Eth[:])
	if err := p.objs.Decap.Put(k, v); err != nil {
		return fmt.Errorf("xsk: put decap entry: %w", err)
	}
	return nil
}

// SweepDecap visits the decap entries and deletes those keep rejects, as
// SweepOffload does.
func (p *Program) SweepDecap(keep func(iid uint32, dst [4]byte, epoch uint32, hits uint64) bool) (int, error) {
	n, err := sweepMap(p.objs.Decap, func(k *steerDecapKey, v *steerDecapVal) bool {
		var dst [4]byte
		binary.NativeEndian.PutUint32(dst[:], k.Dst)
		return keep(k.Iid, dst, v.Epoch, v.Hits)
	})
	if err != nil {
		return n, fmt.Errorf("xsk: sweep decap entries: %w", err)
	}
	return n, nil
}

// sweepMap visits every entry of hash map m and deletes those keep
// rejects, in batches where the kernel has them; it returns how many it
// deleted.
func sweepMap[K, V any](m *ebpf.Map, keep func(*K, *V) bool) (int, error) {
	var drop []K
	visit := func(k *K, v *V) {
		if !keep(k, v) {
			drop = append(drop, *k)
		}
	}
	if err := sweepBatches(m, visit); err != nil {
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return 0, err
		}
		drop = drop[:0]
		if err := sweepKeys(m, visit); err != nil {
			return 0, err
		}
	}
	if len(drop) == 0 {
		return 0, nil
	}
	n, err := m.BatchDelete(drop, nil)
	if err == nil || !errors.Is(err, ebpf.ErrNotSupported) {
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("delete: %w", err)
		}
		return n, nil
	}
	n = 0
	for _, k := range drop {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("delete: %w", err)
		}
		n++
	}
	return n, nil
}

// sweepBatch is how many entries one batch system call reads.
const sweepBatch = 1024

// sweepBatches visits every entry of m, a batch at a time.
func sweepBatches[K, V any](m *ebpf.Map, visit func(*K, *V)) error {
	keys := make([]K, sweepBatch)
	vals := make([]V, sweepBatch)
	var cur ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cur, keys, vals, nil)
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

// sweepKeys visits every entry of m, key by key.
func sweepKeys[K, V any](m *ebpf.Map, visit func(*K, *V)) error {
	var (
		k K
		v V
	)
	it := m.Iterate()
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
