package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath/bgp"
)

// The Mapping System extended community (draft-boucadair-lisp-idr-ms-discovery
// §3; docs/discovery.md "The Mapping System extended community, byte by
// byte"): a Transitive IPv4-Address-Specific extended community (RFC 4360
// §3.2, type 0x01) whose sub-type is rloc's choice (the draft's code point
// was not available) and whose Global Administrator is the mapping
// system's contact IPv4 address and Local Administrator its control port.
const (
	// MSCommType is the extended community's type: Transitive
	// IPv4-Address-Specific (RFC 4360 §3.2; RFC 7153 §5.2).
	MSCommType = 0x01
	// MSCommSubType is the sub-type rloc uses for the Mapping System
	// community (not assigned by IANA).
	MSCommSubType = 0x4c
	// defaultControlPort is the LISP control port (RFC 9301 §5.1), what a
	// Local Administrator of 0 means.
	defaultControlPort = 4342
)

// errNotMSComm tells that an extended community is another kind, not a
// malformed Mapping System community.
var errNotMSComm = errors.New("not a Mapping System extended community")

// EncodeMSComm builds the Mapping System extended community naming the
// contact address of a mapping system (draft-boucadair-lisp-idr-ms-discovery
// §3): an IPv4 unicast address and a port (4342 is sent as 0).
func EncodeMSComm(contact netip.AddrPort) (bgp.ExtCommunity, error) {
	var e bgp.ExtCommunity
	a := contact.Addr()
	if err := checkContact(a); err != nil {
		return e, err
	}
	e[0], e[1] = MSCommType, MSCommSubType
	a4 := a.As4()
	copy(e[2:6], a4[:])
	p := contact.Port()
	if p == defaultControlPort {
		p = 0
	}
	binary.BigEndian.PutUint16(e[6:8], p)
	return e, nil
}

// ParseMSComm decodes a Mapping System extended community into the
// mapping system's contact address and port. It returns errNotMSComm
// for another type or sub-type, and an error naming the cause for a
// Mapping System community whose address is not an IPv4 unicast address.
func ParseMSComm(e bgp.ExtCommunity) (netip.AddrPort, error) {
	if e[0] != MSCommType || e[1] != MSCommSubType {
		return netip.AddrPort{}, errNotMSComm
	}
	a := netip.AddrFrom4([4]byte(e[2:6]))
	if err := checkContact(a); err != nil {
		return netip.AddrPort{}, err
	}
	p := binary.BigEndian.Uint16(e[6:8])
	if p == 0 {
		p = defaultControlPort
	}
	return netip.AddrPortFrom(a, p), nil
}

// checkContact refuses what cannot be a mapping system's contact address.
func checkContact(a netip.Addr) error {
	switch {
	case !a.Is4():
		return fmt.Errorf("contact %v: the community carries an IPv4 address", a)
	case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}), a.IsLoopback():
		return fmt.Errorf("contact %v: not a unicast address", a)
	}
	return nil
}
