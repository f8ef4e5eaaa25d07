package control

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// Distinguished-name EIDs (AFI 17) registered at the Map-Server by the
// sites that list them, answered like prefixes, expired like them.

const nameIID = 5

// nameSite may register printer.example (IID 0) and every name under
// lab.example in nameIID.
func nameSite() SiteConfig {
	return SiteConfig{Name: "names", Keys: []AuthKey{testKey}, Names: []slowpath.SiteName{
		{Name: "printer.example"}, {IID: nameIID, Name: "*.lab.example"}}}
}

// registerEIDName sends a Map-Register of the name (TTL ttl minutes with
// the T bit, 0 withdraws; proxy sets the P bit) to ms from conn, signed
// with key, and reports whether a verified Map-Notify came back.
func registerEIDName(t *testing.T, conn *net.UDPConn, ms netip.AddrPort, key AuthKey, iid uint32, name string, ttl uint32, proxy bool, rloc string) bool {
	t.Helper()
	rec := wire.Record{TTL: ttl, EID: slowpath.NameAddress(iid, name),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr(rloc))}}}
	reg := wire.MapRegister{WantMapNotify: true, ProxyReply: proxy, UseTTL: true, Nonce: newNonce(),
		Auth: wire.NewAuth(key.KeyID, key.Alg, false), Records: []wire.Record{rec}}
	return sendRegister(t, conn, ms, key, &reg)
}

// TestEIDNameRegistered: a site registers the names it lists (exact, and
// under a "*." suffix in an instance-ID); the Map-Server answers a
// Map-Request for a proxy-replied name itself, forwards one for the other
// name to its ETR, lists both, and answers negatively (natively-forward,
// the name echoed) for a name nobody registered. Names the site does not
// list (the bare suffix, another instance-ID, another name, one over 255
// bytes) and a wrong key are refused and counted. Expiry (fake clock) and
// withdrawal remove them.
func TestEIDNameRegistered(t *testing.T) {
	clk := newFakeClock()
	ms := newEngineWith(t, msConfig(siteConfig("a", "10.1.0.0/16", true), nameSite()), nil, slowpath.Options{Clock: clk.Now})
	etr1, etr2 := listenUDP(t), listenUDP(t)
	cl := newNameClient(t, ms.Addr())
	if !registerEIDName(t, etr1, ms.Addr(), testKey, 0, "printer.example", 10, true, "192.0.2.1") {
		t.Fatal("no Map-Notify for printer.example")
	}
	if !registerEIDName(t, etr2, ms.Addr(), testKey, nameIID, "cam.lab.example", 30, false, "192.0.2.2") {
		t.Fatal("no Map-Notify for cam.lab.example")
	}

	printer := slowpath.NameAddress(0, "printer.example")
	r, ok := cl.ask(0, printer, 2*time.Second)
	if !ok || len(r.Locators) != 1 || r.Locators[0].Address.IP != netip.MustParseAddr("192.0.2.1") || !addrEqual(&r.EID, &printer) || r.TTL != 10 {
		t.Fatalf("proxy reply for printer.example: %v %+v", ok, r)
	}

	// Not proxy-replied: forwarded to the registrant in an ECM (E bit).
	cam := slowpath.NameAddress(nameIID, "cam.lab.example")
	if _, ok := cl.ask(nameIID, cam, 0); ok {
		t.Fatal("the Map-Server answered a name whose registration did not ask for proxy replies")
	}
	buf := make([]byte, 9000)
	etr2.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := etr2.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no forwarded request at the ETR: %v", err)
	}
	var ecm wire.ECM
	var req wire.MapRequest
	if err := ecm.Parse(buf[:n]); err != nil || !ecm.ToETR || req.Parse(ecm.Message) != nil || !addrEqual(&req.Records[0].EID, &cam) {
		t.Fatalf("forwarded: %v E=%v %+v", err, ecm.ToETR, req.Records)
	}

	regs := ms.Registrations()
	names := []string{}
	for _, r := range regs {
		names = append(names, r.Site+"/"+r.Name)
	}
	if !slices.Equal(names, []string{"names/printer.example", "names/cam.lab.example"}) {
		t.Errorf("registrations: %v", names)
	}

	rejected := ms.Stats().RegistrationsRejected
	for _, tc := range []struct {
		iid  uint32
		name string
	}{{nameIID, "lab.example"}, {0, "cam.lab.example"}, {nameIID, "printer.example"}, {0, "scanner.example"},
		{nameIID, strings.Repeat("a", 256) + ".lab.example"}} {
		if registerEIDName(t, etr1, ms.Addr(), testKey, tc.iid, tc.name, 10, true, "192.0.2.9") {
			t.Errorf("[%d]%.20s: registered, want refused", tc.iid, tc.name)
		}
	}
	if registerEIDName(t, etr1, ms.Addr(), badKey, 0, "printer.example", 10, true, "192.0.2.9") {
		t.Error("a wrong key registered")
	}
	st := ms.Stats()
	if st.RegistrationsRejected < rejected+4 || st.Msgs[wire.TypeMapRegister].BadAuth != 1 {
		t.Errorf("refusals: rejected %d -> %d, bad auth %d", rejected, st.RegistrationsRejected, st.Msgs[wire.TypeMapRegister].BadAuth)
	}
	if n := len(ms.Registrations()); n != 2 {
		t.Errorf("%d registrations after the refusals, want 2", n)
	}

	neg := func(iid uint32, eid wire.Address, what string) {
		t.Helper()
		r, ok := cl.ask(iid, eid, 2*time.Second)
		if !ok || len(r.Locators) != 0 || r.Action != wire.ActionNativelyForward || !addrEqual(&r.EID, &eid) {
			t.Errorf("%s: want a negative reply for the name, got %v %+v", what, ok, r)
		}
	}
	neg(0, slowpath.NameAddress(0, "scanner.example"), "unregistered name")

	// printer.example's TTL (10 min) runs out; cam.lab.example's (30) not.
	tick(t, ms, clk, 11*time.Minute)
	waitFor(t, 2*time.Second, "printer.example expired", func() bool { return len(ms.Registrations()) == 1 })
	if ms.Stats().RegistrationsExpired != 1 {
		t.Errorf("expired = %d", ms.Stats().RegistrationsExpired)
	}
	neg(0, printer, "expired name")
	registerEIDName(t, etr2, ms.Addr(), testKey, nameIID, "cam.lab.example", 0, false, "192.0.2.2")
	waitFor(t, 2*time.Second, "withdrawal", func() bool { return len(ms.Registrations()) == 0 })
}

// TestEIDNameListingPages: names are listed after the prefixes, in pages
// whose cursor resumes inside the names.
func TestEIDNameListingPages(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true), nameSite()), nil)
	etr := listenUDP(t)
	for _, n := range []string{"b.lab.example", "a.lab.example", "c.lab.example"} {
		if !registerEIDName(t, etr, ms.Addr(), testKey, nameIID, n, 10, true, "192.0.2.1") {
			t.Fatalf("%s not registered", n)
		}
	}
	registerTo(t, ms, "10.1.2.0/24", "192.0.2.7", 10, testKey)
	var got []string
	var after *RegistrationCursor
	for range 10 {
		page, more := ms.RegistrationsPage(after, 2)
		for _, r := range page {
			got = append(got, r.Name+r.EID.Prefix.String())
		}
		if !more {
			break
		}
		after = &page[len(page)-1].Cursor
	}
	want := []string{"10.1.2.0/24", "a.lab.exampleinvalid Prefix", "b.lab.exampleinvalid Prefix", "c.lab.exampleinvalid Prefix"}
	if !slices.Equal(got, want) {
		t.Errorf("pages: %q, want %q", got, want)
	}
}
