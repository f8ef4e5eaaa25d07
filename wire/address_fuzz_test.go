package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzAddress checks, for any input that parses: Append succeeds and agrees
// with Len; the encoding parses back to the same structure; a second
// parse/append round is byte-stable; parsing into a reused Address gives the
// same bytes; String does not panic. The seed corpus is in
// testdata/fuzz/FuzzAddress (valid encodings of every address kind).
func FuzzAddress(f *testing.F) {
	for _, c := range append(lcafCases(), nestedCases()...) {
		f.Add(c.golden)
	}
	var reused Address
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Address
		n, err := a.Parse(data)
		if err != nil {
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("Parse used %d of %d bytes", n, len(data))
		}
		_ = a.String()
		b1, err := a.Append(nil)
		if err != nil {
			t.Fatalf("parsed %x but Append fails: %v", data[:n], err)
		}
		if len(b1) != a.Len() {
			t.Fatalf("Len %d, Append wrote %d", a.Len(), len(b1))
		}
		var c Address
		m, err := c.Parse(b1)
		if err != nil || m != len(b1) {
			t.Fatalf("re-parse of %x: n=%d err=%v", b1, m, err)
		}
		if !reflect.DeepEqual(a, c) {
			t.Fatalf("round trip differs\n first %#v\nsecond %#v", a, c)
		}
		b2, err := c.Append(nil)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("second round not byte-stable: %x vs %x (%v)", b1, b2, err)
		}
		if _, err := reused.Parse(data); err != nil {
			t.Fatalf("reused Address refuses what a fresh one parsed: %v", err)
		}
		if b3, err := reused.Append(nil); err != nil || !bytes.Equal(b1, b3) {
			t.Fatalf("reused Address encodes %x (%v), fresh %x", b3, err, b1)
		}
	})
}
