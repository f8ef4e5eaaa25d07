package slowpath

import (
	"fmt"
	"strings"

	"github.com/rloc-router/rloc/wire"
)

// Distinguished-name EIDs (AFI 17, RFC 8060 §3 and
// draft-ietf-lisp-name-encoding): NUL-terminated ASCII names such as
// "printer.example", registered and looked up as EIDs, bare or inside an
// instance-ID LCAF. Group names ("group-<G-EID>",
// draft-ietf-lisp-group-mapping) are names too, but are keyed by the
// overlay range they name (replicate.ParseGroupNameEID) and are not
// handled here.

const (
	// MaxEIDNameLen bounds a distinguished-name EID: 255 bytes, the
	// longest DNS name, which names of hosts and services follow.
	MaxEIDNameLen = 255
	// MaxSiteNames bounds the names (exact or suffix patterns) one site
	// lists in the configuration.
	MaxSiteNames = 1024
)

// SiteName is a distinguished name a site may register: exactly Name, or
// with a leading "*." every name that ends in the rest with at least one
// more label before it ("*.example" covers "printer.example" and
// "a.b.example", not "example").
type SiteName struct {
	// IID is the instance-ID (RFC 8060 §4.1).
	IID uint32 `mapstructure:"iid"`
	// Name is the name, or "*." and a suffix.
	Name string `mapstructure:"name"`
}

// Suffix returns the suffix of a "*." pattern with its leading dot
// (".example"), false for an exact name.
func (n *SiteName) Suffix() (string, bool) {
	if s, ok := strings.CutPrefix(n.Name, "*"); ok {
		return s, true
	}
	return "", false
}

// Validate checks the name configured under path.
func (n *SiteName) Validate(path string) error {
	if n.IID > wire.MaxInstanceID {
		return fmt.Errorf("%s.iid: %d does not fit in 24 bits (0..%d)", path, n.IID, wire.MaxInstanceID)
	}
	name := n.Name
	if s, ok := n.Suffix(); ok {
		if !strings.HasPrefix(s, ".") || len(s) < 2 {
			return fmt.Errorf("%s.name: %q: a pattern is \"*.\" and a suffix (\"*.example\")", path, n.Name)
		}
		name = s[1:]
	}
	if err := CheckEIDName(name); err != nil {
		return fmt.Errorf("%s.name: %w", path, err)
	}
	if strings.HasPrefix(name, "group-") {
		return fmt.Errorf("%s.name: %q: names starting with \"group-\" are group names (map_server.group_mappings)", path, n.Name)
	}
	return nil
}

// CheckEIDName checks a distinguished-name EID: 1 to MaxEIDNameLen
// printable ASCII characters, no space, no "*".
func CheckEIDName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case len(name) > MaxEIDNameLen:
		return fmt.Errorf("name of %d bytes, at most %d", len(name), MaxEIDNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '*' {
			return fmt.Errorf("%q: byte %d (0x%02x) is not a printable ASCII character other than space and '*'", name, i, c)
		}
	}
	return nil
}

// NameEID returns the instance-ID and the name of a distinguished-name
// EID (AFI 17, bare or in an instance-ID LCAF); ok is false for any other
// address and for a name CheckEIDName refuses.
func NameEID(a *wire.Address) (iid uint32, name string, ok bool) {
	iid, in, ok := a.Unwrap()
	if !ok || in.AFI != wire.AFIDistName || CheckEIDName(in.Name) != nil {
		return 0, "", false
	}
	return iid, in.Name, true
}

// NameAddress returns the EID of name in iid: AFI 17, in an instance-ID
// LCAF unless iid is 0.
func NameAddress(iid uint32, name string) wire.Address {
	a := wire.NameAddress(name)
	if iid == 0 {
		return a
	}
	return wire.InInstance(iid, a)
}

// NameCovers reports whether the pattern (an exact name, or "*." and a
// suffix) covers name.
func NameCovers(pattern, name string) bool {
	if s, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(name) > len(s) && strings.HasSuffix(name, s)
	}
	return pattern == name
}

// EIDName is a distinguished-name EID in an instance-ID.
type EIDName struct {
	// IID is the instance-ID (RFC 8060 §4.1).
	IID uint32
	// Name is the name, without its NUL terminator.
	Name string
}
