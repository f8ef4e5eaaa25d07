package control

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// TestMapRegisterParsedOnce: each Map-Register is decoded once, though
// with multicast configured two roles look at it (the RTR's tree-join
// handler first, then the Map-Server): MsgStats.Parsed counts decodes.
func TestMapRegisterParsedOnce(t *testing.T) {
	c := msConfig(mcSite())
	c.Multicast = &MulticastConfig{Key: mcKey}
	ms := newEngine(t, c, nil)
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	uni := wire.MapRegister{Nonce: newNonce(), Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false),
		Records: []wire.Record{{TTL: 3, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0")),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
	ub, err := uni.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{ub, sgRegister(t, 128, "192.0.2.1", wire.XTRID{}), ub} {
		inject(t, ms, src, b)
	}
	st := ms.Stats()
	r := st.Msg(wire.TypeMapRegister)
	if r.Received != 3 || r.Parsed != 3 {
		t.Fatalf("Map-Register counters %+v: want 3 received, 3 decoded", r)
	}
	// The unicast register sent twice is a retransmission the second time
	// (same nonce, same source): confirmed, not stored again.
	if st.RegistrationsAccepted != 2 || st.RegistrationsRetransmitted != 1 || len(ms.McastRLE(0, srcEID, grpEID)) != 1 || len(ms.Registrations()) != 1 {
		t.Fatalf("registrations: %d accepted, %d retransmitted, %d (S,G) entries, %v", st.RegistrationsAccepted, st.RegistrationsRetransmitted, len(ms.McastRLE(0, srcEID, grpEID)), ms.Registrations())
	}
}
