package router

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/slowpath/control"
)

// TestCursorNames: the API's registration cursor round-trips for a
// prefix, a group name's range and a distinguished name (one holding "|"
// too); a "dn" cursor without a name is refused.
func TestCursorNames(t *testing.T) {
	for _, c := range []control.RegistrationCursor{
		{IID: 3, Prefix: netip.MustParsePrefix("10.1.0.0/16"), ID: "192.0.2.1:4342"},
		{Name: true, IID: 9, Prefix: netip.MustParsePrefix("232.1.0.0/16")},
		{IID: 5, DN: "cam.lab.example", ID: "0102030405060708090a0b0c0d0e0f10"},
		{DN: "odd|name", ID: "192.0.2.1:4342"},
	} {
		got, err := parseCursor(formatCursor(&c))
		if err != nil || got != c {
			t.Errorf("%+v: %q read back as %+v, %v", c, formatCursor(&c), got, err)
		}
	}
	if _, err := parseCursor("dn|0|x|"); err == nil {
		t.Error("a dn cursor without a name was accepted")
	}
}
