package slowpath

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// TestSiteNamesValidate: bad names, too many names and a name in two
// sites are configuration errors naming the key.
func TestSiteNamesValidate(t *testing.T) {
	site := func(names ...SiteName) SiteConfig {
		return SiteConfig{Name: "s", Keys: []AuthKey{{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "k"}}, Names: names}
	}
	if err := ValidateSites("sites", []SiteConfig{site(SiteName{Name: "printer.example"}, SiteName{IID: 3, Name: "*.lab.example"})}); err != nil {
		t.Fatalf("good names refused: %v", err)
	}
	many := make([]SiteName, MaxSiteNames+1)
	for i := range many {
		many[i].Name = fmt.Sprintf("h%d.example", i)
	}
	for _, tc := range []struct {
		names []SiteName
		want  string
	}{
		{[]SiteName{{Name: ""}}, "sites[0].names[0].name: empty name"},
		{[]SiteName{{Name: strings.Repeat("a", 256)}}, "sites[0].names[0].name: name of 256 bytes, at most 255"},
		{[]SiteName{{Name: "ok.example"}, {Name: "two words"}}, "sites[0].names[1].name"},
		{[]SiteName{{Name: "*example"}}, `sites[0].names[0].name: "*example": a pattern is`},
		{[]SiteName{{Name: "*."}}, "sites[0].names[0].name"},
		{[]SiteName{{Name: "a*.example"}}, "sites[0].names[0].name"},
		{[]SiteName{{Name: "group-232.1.0.0/16"}}, "group names"},
		{[]SiteName{{IID: wire.MaxInstanceID + 1, Name: "a.example"}}, "sites[0].names[0].iid"},
		{many, fmt.Sprintf("sites[0].names: %d names, at most %d", MaxSiteNames+1, MaxSiteNames)},
	} {
		err := ValidateSites("sites", []SiteConfig{site(tc.names...)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.30v: error %v, want %q", tc.names, err, tc.want)
		}
	}
	two := []SiteConfig{site(SiteName{Name: "a.example"}), site(SiteName{Name: "a.example"})}
	two[1].Name = "t"
	if err := ValidateSites("sites", two); err == nil || !strings.Contains(err.Error(), `sites[1].names[0].name: "a.example" in IID 0 already belongs to site "s"`) {
		t.Errorf("a name in two sites: %v", err)
	}
}

// TestNameEID: AFI 17 names, bare or in an instance-ID LCAF, are read
// back; other addresses and bad names are not.
func TestNameEID(t *testing.T) {
	for _, iid := range []uint32{0, 9} {
		a := NameAddress(iid, "printer.example")
		if got, n, ok := NameEID(&a); !ok || got != iid || n != "printer.example" {
			t.Errorf("NameEID(%v) = %d %q %v", a, got, n, ok)
		}
	}
	for _, a := range []wire.Address{wire.IPAddress(netip.MustParseAddr("10.0.0.1")), wire.NameAddress(""), wire.NameAddress("a b"),
		wire.NameAddress(strings.Repeat("x", 256))} {
		if _, _, ok := NameEID(&a); ok {
			t.Errorf("NameEID(%v) accepted", a)
		}
	}
	if !NameCovers("*.example", "a.example") || NameCovers("*.example", ".example") || NameCovers("*.example", "example") || !NameCovers("a", "a") {
		t.Error("NameCovers")
	}
}
