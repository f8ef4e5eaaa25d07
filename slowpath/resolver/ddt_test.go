package resolver

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// TestCloneECM: the copy a pending resolution keeps shares no memory with
// the receive buffer the ECM was parsed from.
func TestCloneECM(t *testing.T) {
	a := netip.MustParseAddr("10.1.2.3")
	e := wire.ECM{Security: true, Message: []byte{1}, Inner: []byte{2}}
	e.Auth.EID.MAC = []byte{1, 2, 3}
	e.Auth.EID.Records = []wire.EIDRecord{{MaskLen: 32, EID: wire.IIDAddress(7, a)}}
	c := cloneECM(&e)
	e.Auth.EID.MAC[0] = 9
	e.Auth.EID.Records[0].EID.LCAF.Addrs[0] = wire.IPAddress(netip.MustParseAddr("10.9.9.9"))
	if c.Message != nil || c.Inner != nil || c.Auth.EID.MAC[0] != 1 || !c.Security {
		t.Fatalf("copy %+v", c)
	}
	if _, p, ok := c.Auth.EID.Records[0].Prefix(); !ok || p.Addr() != a {
		t.Fatalf("record EID %v, want %v", p, a)
	}
}
