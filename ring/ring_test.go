package ring

import (
	"bytes"
	"testing"
)

func newTestPool(t *testing.T, n int) *Pool {
	t.Helper()
	p, err := NewPool(make([]byte, n*512), 512, 192)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPoolRejects(t *testing.T) {
	for _, tc := range []struct {
		name          string
		mem, chunk, h int
	}{
		{"small mem", 100, 512, 192},
		{"zero chunk", 1024, 0, 192},
		{"headroom below minimum", 1024, 512, Headroom - 1},
		{"headroom fills chunk", 1024, 512, 512},
	} {
		if _, err := NewPool(make([]byte, tc.mem), tc.chunk, tc.h); err == nil {
			t.Errorf("%s: NewPool succeeded", tc.name)
		}
	}
}

func TestFramePushPull(t *testing.T) {
	p := newTestPool(t, 2)
	f, ok := p.Get()
	if !ok {
		t.Fatal("Get failed")
	}
	if f.Len() != 0 || f.Headroom() != 192 || f.Cap() != 512-192 {
		t.Fatalf("fresh frame: len %d headroom %d cap %d", f.Len(), f.Headroom(), f.Cap())
	}
	if !f.SetLen(4) {
		t.Fatal("SetLen(4) failed")
	}
	copy(f.Bytes(), "data")
	payload := f.Bytes()
	hdr := f.Push(36)
	if hdr == nil || f.Len() != 40 || f.Headroom() != 156 {
		t.Fatalf("Push(36): len %d headroom %d", f.Len(), f.Headroom())
	}
	copy(hdr, bytes.Repeat([]byte{0xee}, 36))
	if !bytes.Equal(f.Bytes()[36:], []byte("data")) || !SameMemory(f.Bytes()[36:], payload) {
		t.Fatal("Push moved the payload")
	}
	if f.Push(157) != nil || f.Push(-1) != nil || f.Len() != 40 {
		t.Fatal("Push beyond headroom or negative changed the frame")
	}
	if !f.Pull(36) || !bytes.Equal(f.Bytes(), []byte("data")) {
		t.Fatalf("Pull(36): %q", f.Bytes())
	}
	if f.Pull(5) || f.Pull(-1) || f.Len() != 4 {
		t.Fatal("Pull beyond length or negative changed the frame")
	}
	if f.SetLen(f.Cap()+1) || f.SetLen(-1) || !f.SetLen(f.Cap()) || f.Tailroom() != 0 {
		t.Fatal("SetLen bounds wrong")
	}
	// Bytes must not let an append spill past the chunk.
	if cap(f.Bytes()) != f.Len() {
		t.Fatalf("cap(Bytes()) = %d, want %d", cap(f.Bytes()), f.Len())
	}
	if f.Reset(513) || !f.Reset(128) || f.Headroom() != 128 || f.Len() != 0 {
		t.Fatal("Reset wrong")
	}
}

func TestPoolFreeList(t *testing.T) {
	p := newTestPool(t, 4)
	var fs [5]Frame
	n := 0
	for ; n < 5; n++ {
		f, ok := p.Get()
		if !ok {
			break
		}
		fs[n] = f
	}
	if n != 4 || p.Free() != 0 {
		t.Fatalf("got %d frames, %d free; want 4, 0", n, p.Free())
	}
	seen := map[uint32]bool{}
	for i := 0; i < n; i++ {
		if seen[fs[i].Index()] {
			t.Fatalf("chunk %d handed out twice", fs[i].Index())
		}
		seen[fs[i].Index()] = true
	}
	dup := fs[0]
	Release(fs[:n])
	if p.Free() != 4 {
		t.Fatalf("free after release = %d", p.Free())
	}
	p.Put(&dup)
	p.PutIndex(99)
	if p.DoubleFrees != 2 || p.Free() != 4 {
		t.Fatalf("double free: count %d free %d", p.DoubleFrees, p.Free())
	}
	other := newTestPool(t, 1)
	g, _ := other.Get()
	p.Put(&g)
	if p.Foreign != 1 || p.Free() != 4 {
		t.Fatal("foreign Put not ignored")
	}
	if _, ok := p.GetIndex(4, 0, 0); ok {
		t.Fatal("GetIndex out of range succeeded")
	}
	if _, ok := p.GetIndex(0, 500, 20); ok {
		t.Fatal("GetIndex past chunk end succeeded")
	}
}

func TestCopyInto(t *testing.T) {
	p := newTestPool(t, 2)
	a, _ := p.Get()
	b, _ := p.Get()
	a.SetLen(3)
	copy(a.Bytes(), "abc")
	if !CopyInto(&b, &a) || string(b.Bytes()) != "abc" || SameMemory(a.Bytes(), b.Bytes()) {
		t.Fatal("CopyInto wrong")
	}
	a.SetLen(a.Cap())
	b.Reset(300)
	if CopyInto(&b, &a) {
		t.Fatal("CopyInto of an oversized frame succeeded")
	}
}
