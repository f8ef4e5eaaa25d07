package msx

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestNonces: the Map-Invoke nonces are remembered for 2*invokeSkew, a
// repeat within it refused; at most maxInvokeNonces are held, refusing new
// ones while every one is recent; the ring keeps arrival order across
// growth and wrap-around.
func TestNonces(t *testing.T) {
	var s nonces
	a := &agreement{}
	key := func(i int) seenKey {
		var n wire.Nonce
		binary.BigEndian.PutUint64(n[:], uint64(i))
		return seenKey{a, n}
	}
	t0 := time.Unix(1e9, 0)
	for i := range 100 {
		if ok, _ := s.add(key(i), t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("%d refused", i)
		}
	}
	// At 100 s: those of 0..40 s are forgotten, 41..99 remembered.
	now := t0.Add(100 * time.Second)
	if ok, _ := s.add(key(41), now); ok {
		t.Fatal("nonce 41 accepted again")
	}
	if ok, _ := s.add(key(40), now); !ok || s.size != 60 {
		t.Fatalf("nonce 40 refused (size %d)", s.size)
	}
	// Full of recent nonces: refused as full; later the oldest go.
	for i := 1000; s.size < maxInvokeNonces; i++ {
		if ok, _ := s.add(key(i), now); !ok {
			t.Fatalf("%d refused at size %d", i, s.size)
		}
	}
	if ok, full := s.add(key(1), now); ok || !full {
		t.Fatalf("added to a full table: %v %v", ok, full)
	}
	if ok, _ := s.add(key(1), now.Add(2*invokeSkew)); !ok || s.size != 1 || len(s.set) != 1 {
		t.Fatalf("not forgotten: size %d, set %d", s.size, len(s.set))
	}
}
