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
// offload_v4, or offload_v6 with e.InnerV6; an IPv6 front with e.V6). Each
// map (offload, offload6) holds 65536 flows: when one is full the error
// wraps the kernel's E2BIG, and a sweep (SweepOffload) makes room.
func (p *Program) PutOffload(e *ring.OffloadEntry) error {
	if e.Ifindex <= 0 {
		return fmt.Errorf("xsk: offload entry without an egress interface")
	}
	v := offloadVal(e)
	var err error
	if e.InnerV6 {
		err = p.objs.Offload6.Put(steerOffload6Key{Dst: e.Dst6, Bkt: e.Bucket}, v)
	} else {
		err = p.objs.Offload.Put(steerOffloadKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), Bkt: e.Bucket}, v)
	}
	if err != nil {
		return fmt.Errorf("xsk: put offload entry: %w", err)
	}
	return nil
}

// DeleteOffload deletes the offload entry of e's flow (its destination and
// bucket), if there is one.
func (p *Program) DeleteOffload(e *ring.OffloadEntry) error {
	var err error
	if e.InnerV6 {
		err = p.objs.Offload6.Delete(steerOffload6Key{Dst: e.Dst6, Bkt: e.Bucket})
	} else {
		err = p.objs.Offload.Delete(steerOffloadKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), Bkt: e.Bucket})
	}
	return deleted("offload", err)
}

// deleted is the error of a map delete of kind's entry: none when the entry
// was not there.
func deleted(kind string, err error) error {
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xsk: delete %s entry: %w", kind, err)
	}
	return nil
}

// offloadVal is the map value of e (offload, offload6, reencap's o).
func offloadVal(e *ring.OffloadEntry) steerOffloadVal {
	v := steerOffloadVal{Epoch: e.Epoch, Ifindex: uint32(e.Ifindex), CsBase: e.CsBase, MaxInner: e.MaxInner}
	if e.Nonce {
		v.Nonce = 1
	}
	if e.V6 {
		v.V6 = 1
	}
	copy(v.Front[:], e.Front[:])
	return v
}

// SetOffload sets the offload epoch (0: off) and the flow hash seed.
func (p *Program) SetOffload(epoch, seed uint32) error {
	p.cfg.Epoch, p.cfg.Seed = epoch, seed
	return p.writeConfig()
}

// writeConfig writes p.cfg into the program's config map.
func (p *Program) writeConfig() error {
	if err := p.objs.Config.Put(uint32(0), p.cfg); err != nil {
		return fmt.Errorf("xsk: write program config: %w", err)
	}
	return nil
}

// words6 is IPv6 address a as the map values hold it (__be32[4]), and
// bytes6 the other way round.
func words6(a [16]byte) (w [4]uint32) {
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(a[4*i:])
	}
	return w
}

func bytes6(w [4]uint32) (a [16]byte) {
	for i, x := range w {
		binary.NativeEndian.PutUint32(a[4*i:], x)
	}
	return a
}

// fillOffload fills e from an offload map's value (the key's fields are
// the caller's).
func fillOffload(e *ring.OffloadEntry, v *steerOffloadVal) {
	e.Epoch, e.Ifindex = v.Epoch, int(v.Ifindex)
	e.CsBase, e.MaxInner, e.Nonce, e.V6 = v.CsBase, v.MaxInner, v.Nonce != 0, v.V6 != 0
	copy(e.Front[:], v.Front[:])
}

// offload4 and offload6 fill e from an entry of the offload and offload6
// maps and return its hits.
func offload4(e *ring.OffloadEntry, k *steerOffloadKey, v *steerOffloadVal) uint64 {
	*e = ring.OffloadEntry{Bucket: k.Bkt}
	binary.NativeEndian.PutUint32(e.Dst[:], k.Dst)
	fillOffload(e, v)
	return v.Hits
}

func offload6(e *ring.OffloadEntry, k *steerOffload6Key, v *steerOffloadVal) uint64 {
	*e = ring.OffloadEntry{Bucket: k.Bkt, InnerV6: true, Dst6: k.Dst}
	fillOffload(e, v)
	return v.Hits
}

// SweepOffload visits the offload entries (IPv4 and IPv6 EIDs) and deletes
// those keep rejects. It reads and deletes them in batches
// (BPF_MAP_LOOKUP_BATCH, BPF_MAP_DELETE_BATCH): a few system calls for a
// full map instead of two per entry: 13–15 ms for 49152 entries instead of
// 140 (BenchmarkSweepOffload). A kernel without batches (before 5.6) is
// walked key by key.
func (p *Program) SweepOffload(keep func(e *ring.OffloadEntry, hits uint64) bool) (int, error) {
	n, err := sweepPair(p.objs.Offload, p.objs.Offload6, offload4, offload6, keep)
	if err != nil {
		return n, fmt.Errorf("xsk: sweep offload entries: %w", err)
	}
	return n, nil
}

// ListOffload calls f with every offload entry (IPv4 EIDs, then IPv6 ones)
// and its hits, until f returns false (ring.OffloadTable).
func (p *Program) ListOffload(f func(e *ring.OffloadEntry, hits uint64) bool) error {
	if err := listPair(p.objs.Offload, p.objs.Offload6, offload4, offload6, f); err != nil {
		return fmt.Errorf("xsk: list offload entries: %w", err)
	}
	return nil
}

// The steering program is a ring.DecapTable (core mode).
var _ ring.DecapTable = (*Program)(nil)

// PutDecap adds or replaces the decap entry of e's flow (bpf/steer.c,
// offload_decap4; offload_decap6 with e.V6; the decap6 map with
// e.InnerV6): a flow has one entry per outer IP version. Each map holds 65536 flows: when one is full the error wraps
// the kernel's E2BIG, and a sweep (SweepDecap) makes room.
func (p *Program) PutDecap(e *ring.DecapEntry) error {
	if e.Ifindex <= 0 {
		return fmt.Errorf("xsk: decap entry without a site interface")
	}
	v := steerDecapVal{Epoch: e.Epoch, Ifindex: uint32(e.Ifindex), Rloc: binary.NativeEndian.Uint32(e.RLOC[:])}
	if e.NonceOK {
		v.NonceOk = 1
	}
	if e.V6 {
		v.V6, v.Rloc = 1, 0
		v.Rloc6 = words6(e.RLOC6)
	}
	copy(v.Eth[:], e.Eth[:])
	var err error
	if e.InnerV6 {
		err = p.objs.Decap6.Put(steerDecap6Key{Dst: e.Dst6, Iid: e.IID, Over6: v.V6}, v)
	} else {
		err = p.objs.Decap.Put(steerDecapKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), Iid: e.IID, Over6: v.V6}, v)
	}
	if err != nil {
		return fmt.Errorf("xsk: put decap entry: %w", err)
	}
	return nil
}

// fillDecap fills e from a decap map's value (the key's fields are the
// caller's).
func fillDecap(e *ring.DecapEntry, v *steerDecapVal) {
	e.Epoch, e.Ifindex, e.NonceOK, e.V6 = v.Epoch, int(v.Ifindex), v.NonceOk != 0, v.V6 != 0
	binary.NativeEndian.PutUint32(e.RLOC[:], v.Rloc)
	e.RLOC6 = bytes6(v.Rloc6)
	copy(e.Eth[:], v.Eth[:])
}

// decap4 and decap6 fill e from an entry of the decap and decap6 maps
// and return its hits.
func decap4(e *ring.DecapEntry, k *steerDecapKey, v *steerDecapVal) uint64 {
	*e = ring.DecapEntry{IID: k.Iid}
	binary.NativeEndian.PutUint32(e.Dst[:], k.Dst)
	fillDecap(e, v)
	return v.Hits
}

func decap6(e *ring.DecapEntry, k *steerDecap6Key, v *steerDecapVal) uint64 {
	*e = ring.DecapEntry{IID: k.Iid, InnerV6: true, Dst6: k.Dst}
	fillDecap(e, v)
	return v.Hits
}

// SweepDecap visits the decap entries (IPv4 and IPv6 EIDs) and deletes
// those keep rejects, as SweepOffload does.
func (p *Program) SweepDecap(keep func(e *ring.DecapEntry, hits uint64) bool) (int, error) {
	n, err := sweepPair(p.objs.Decap, p.objs.Decap6, decap4, decap6, keep)
	if err != nil {
		return n, fmt.Errorf("xsk: sweep decap entries: %w", err)
	}
	return n, nil
}

// ListDecap calls f with every decap entry (IPv4 EIDs, then IPv6 ones)
// and its hits, until f returns false (ring.DecapTable).
func (p *Program) ListDecap(f func(e *ring.DecapEntry, hits uint64) bool) error {
	if err := listPair(p.objs.Decap, p.objs.Decap6, decap4, decap6, f); err != nil {
		return fmt.Errorf("xsk: list decap entries: %w", err)
	}
	return nil
}

// The steering program is a ring.ReencapTable (core mode, an RTR's).
var _ ring.ReencapTable = (*Program)(nil)

// PutReencap adds or replaces the reencap entry of e's flow (bpf/steer.c,
// offload_reencap4 for packets to an IPv4 RLOC of ours, offload_reencap6 to
// an IPv6 one with e.Over6; the reencap6 map with e.InnerV6; an IPv6 front
// with e.V6): a flow has one entry per outer IP version. Each map holds 65536 flows: when one is full the error wraps
// the kernel's E2BIG, and a sweep (SweepReencap) makes room.
func (p *Program) PutReencap(e *ring.ReencapEntry) error {
	if e.Ifindex <= 0 {
		return fmt.Errorf("xsk: reencap entry without an egress interface")
	}
	if e.IID > 1<<24-1 {
		return fmt.Errorf("xsk: reencap entry: instance-ID %d does not fit in 24 bits", e.IID)
	}
	v := steerReencapVal{O: offloadVal(&e.OffloadEntry), Rloc: binary.NativeEndian.Uint32(e.RLOC[:])}
	if e.NonceOK {
		v.NonceOk = 1
	}
	if e.Over6 {
		v.In6, v.Rloc = 1, 0
		v.Rloc6 = words6(e.RLOC6)
	}
	var err error
	if e.InnerV6 {
		err = p.objs.Reencap6.Put(steerReencap6Key{Dst: e.Dst6, IidBkt: e.IID<<8 | uint32(e.Bucket), Over6: v.In6}, v)
	} else {
		err = p.objs.Reencap.Put(steerReencapKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), IidBkt: e.IID<<8 | uint32(e.Bucket), Over6: v.In6}, v)
	}
	if err != nil {
		return fmt.Errorf("xsk: put reencap entry: %w", err)
	}
	return nil
}

// DeleteReencap deletes the reencap entry of e's flow and outer version, if
// there is one.
func (p *Program) DeleteReencap(e *ring.ReencapEntry) error {
	var over6 uint8
	if e.Over6 {
		over6 = 1
	}
	var err error
	if e.InnerV6 {
		err = p.objs.Reencap6.Delete(steerReencap6Key{Dst: e.Dst6, IidBkt: e.IID<<8 | uint32(e.Bucket), Over6: over6})
	} else {
		err = p.objs.Reencap.Delete(steerReencapKey{Dst: binary.NativeEndian.Uint32(e.Dst[:]), IidBkt: e.IID<<8 | uint32(e.Bucket), Over6: over6})
	}
	return deleted("reencap", err)
}

// SetReencap sets the reencap epoch (0: off) and the flow hash seed.
func (p *Program) SetReencap(epoch, seed uint32) error {
	p.cfg.EpochReencap, p.cfg.Seed = epoch, seed
	return p.writeConfig()
}

// reencap4 and reencap6 fill e from an entry of the reencap and reencap6
// maps and return its hits.
func reencap4(e *ring.ReencapEntry, k *steerReencapKey, v *steerReencapVal) uint64 {
	fillReencap(e, k.IidBkt, v)
	binary.NativeEndian.PutUint32(e.Dst[:], k.Dst)
	return v.O.Hits
}

func reencap6(e *ring.ReencapEntry, k *steerReencap6Key, v *steerReencapVal) uint64 {
	fillReencap(e, k.IidBkt, v)
	e.InnerV6, e.Dst6 = true, k.Dst
	return v.O.Hits
}

// fillReencap fills e from a reencap map's value and its key's
// instance-ID and bucket (the destination is the caller's).
func fillReencap(e *ring.ReencapEntry, iidBkt uint32, v *steerReencapVal) {
	*e = ring.ReencapEntry{IID: iidBkt >> 8, NonceOK: v.NonceOk != 0, Over6: v.In6 != 0}
	binary.NativeEndian.PutUint32(e.RLOC[:], v.Rloc)
	e.RLOC6 = bytes6(v.Rloc6)
	fillOffload(&e.OffloadEntry, &v.O)
	e.Bucket = uint8(iidBkt)
}

// SweepReencap visits the reencap entries and deletes those keep rejects,
// as SweepOffload does.
func (p *Program) SweepReencap(keep func(e *ring.ReencapEntry, hits uint64) bool) (int, error) {
	n, err := sweepPair(p.objs.Reencap, p.objs.Reencap6, reencap4, reencap6, keep)
	if err != nil {
		return n, fmt.Errorf("xsk: sweep reencap entries: %w", err)
	}
	return n, nil
}

// ListReencap calls f with every reencap entry and its hits, until f
// returns false (ring.ReencapTable).
func (p *Program) ListReencap(f func(e *ring.ReencapEntry, hits uint64) bool) error {
	if err := listPair(p.objs.Reencap, p.objs.Reencap6, reencap4, reencap6, f); err != nil {
		return fmt.Errorf("xsk: list reencap entries: %w", err)
	}
	return nil
}

// sweepPair is sweepMap over a table held in two maps, m4 for IPv4 EIDs
// (keys K4) and m6 for IPv6 ones (K6): keep sees each entry as an E,
// filled by fill4 or fill6, which return its hits.
func sweepPair[K4, K6, V, E any](m4, m6 *ebpf.Map, fill4 func(*E, *K4, *V) uint64, fill6 func(*E, *K6, *V) uint64,
	keep func(*E, uint64) bool) (int, error) {
	var e E
	n, err := sweepMap(m4, func(k *K4, v *V) bool { return keep(&e, fill4(&e, k, v)) })
	if err != nil {
		return n, err
	}
	n6, err := sweepMap(m6, func(k *K6, v *V) bool { return keep(&e, fill6(&e, k, v)) })
	return n + n6, err
}

// listPair is listMap over a table held in two maps, as sweepPair.
func listPair[K4, K6, V, E any](m4, m6 *ebpf.Map, fill4 func(*E, *K4, *V) uint64, fill6 func(*E, *K6, *V) uint64,
	f func(*E, uint64) bool) error {
	var e E
	more := true
	if err := listMap(m4, func(k *K4, v *V) bool { more = f(&e, fill4(&e, k, v)); return more }); err != nil || !more {
		return err
	}
	return listMap(m6, func(k *K6, v *V) bool { return f(&e, fill6(&e, k, v)) })
}

// errStop ends a listMap walk early.
var errStop = errors.New("stop")

// listMap visits the entries of hash map m, in batches where the kernel
// has them, until visit returns false.
func listMap[K, V any](m *ebpf.Map, visit func(*K, *V) bool) error {
	walk := func(k *K, v *V) error {
		if !visit(k, v) {
			return errStop
		}
		return nil
	}
	err := walkBatches(m, walk)
	if errors.Is(err, ebpf.ErrNotSupported) {
		err = walkKeys(m, walk)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// sweepMap visits every entry of hash map m and deletes those keep
// rejects, in batches where the kernel has them; it returns how many it
// deleted.
func sweepMap[K, V any](m *ebpf.Map, keep func(*K, *V) bool) (int, error) {
	var drop []K
	visit := func(k *K, v *V) error {
		if !keep(k, v) {
			drop = append(drop, *k)
		}
		return nil
	}
	if err := walkBatches(m, visit); err != nil {
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return 0, err
		}
		drop = drop[:0]
		if err := walkKeys(m, visit); err != nil {
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

// walkBatches visits every entry of m, a batch at a time, until visit
// returns an error, which it returns.
func walkBatches[K, V any](m *ebpf.Map, visit func(*K, *V) error) error {
	keys := make([]K, sweepBatch)
	vals := make([]V, sweepBatch)
	var cur ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cur, keys, vals, nil)
		for i := range n {
			if err := visit(&keys[i], &vals[i]); err != nil {
				return err
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil // the end
		}
		if err != nil {
			return err
		}
	}
}

// walkKeys visits every entry of m, key by key, until visit returns an
// error, which it returns.
func walkKeys[K, V any](m *ebpf.Map, visit func(*K, *V) error) error {
	var (
		k K
		v V
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if err := visit(&k, &v); err != nil {
			return err
		}
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
