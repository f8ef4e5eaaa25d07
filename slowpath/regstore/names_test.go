package regstore

import "testing"

// TestSitesForName: an exact name wins over a suffix, the longest suffix
// over a shorter one; a suffix never covers the bare name, nor a name in
// another instance-ID; names given twice are refused naming the site.
func TestSitesForName(t *testing.T) {
	a := &Site{Name: "a", Names: []SiteName{{Name: "printer.example"}, {Name: ".example", Suffix: true}}}
	b := &Site{Name: "b", Names: []SiteName{{Name: ".lab.example", Suffix: true}, {IID: 7, Name: "printer.example"}}}
	ss, err := NewSites([]*Site{a, b})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iid  uint32
		name string
		want *Site
	}{
		{0, "printer.example", a}, {0, "x.example", a}, {0, "cam.lab.example", b}, {0, "a.b.lab.example", b},
		{0, "lab.example", a}, {0, "example", nil}, {0, ".example", nil}, {0, "printer.example.org", nil},
		{7, "printer.example", b}, {7, "x.example", nil}, {1, "printer.example", nil},
	} {
		if got := ss.ForName(tc.iid, tc.name); got != tc.want {
			t.Errorf("ForName(%d, %q) = %v, want %v", tc.iid, tc.name, got, tc.want)
		}
	}
	if _, err := NewSites([]*Site{a, {Name: "c", Names: []SiteName{{Name: "printer.example"}}}}); err == nil {
		t.Error("a name given twice was accepted")
	}
	if _, err := NewSites([]*Site{{Name: "c", Names: []SiteName{{Name: "example", Suffix: true}}}}); err == nil {
		t.Error("a suffix without its dot was accepted")
	}
}
