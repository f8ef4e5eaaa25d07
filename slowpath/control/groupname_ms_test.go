package control

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// Group-name lookups answered by the Map-Server (draft-ietf-lisp-group-mapping,
// the mapping-system method): configured mappings and registered names.

const provIID = 9

func groupMapping(geid string, groups ...string) replicate.GroupMapping {
	m := replicate.GroupMapping{IID: provIID, GEID: netip.MustParsePrefix(geid)}
	for _, g := range groups {
		m.Groups = append(m.Groups, replicate.UnderlayGroup{Group: netip.MustParseAddr(g)})
	}
	return m
}

// nameClient asks a Map-Server for group names over loopback.
type nameClient struct {
	t    *testing.T
	conn *net.UDPConn
	ms   netip.AddrPort
}

func newNameClient(t *testing.T, ms netip.AddrPort) *nameClient {
	return &nameClient{t: t, conn: listenUDP(t), ms: ms}
}

// ask sends a Map-Request for the group name of g in iid and returns the
// reply's record, ok false when nothing came back within d.
func (c *nameClient) ask(iid uint32, eid wire.Address, d time.Duration) (wire.Record, bool) {
	c.t.Helper()
	req := wire.MapRequest{Nonce: newNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{EID: eid}}}
	b, err := req.Append(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	// Replies go to the ITR-RLOC at the request's source port.
	if _, err := c.conn.WriteToUDPAddrPort(b, c.ms); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 9000)
	for {
		c.conn.SetReadDeadline(time.Now().Add(d))
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return wire.Record{}, false
		}
		var rep wire.MapReply
		if rep.Parse(buf[:n]) != nil || rep.Nonce != req.Nonce || len(rep.Records) != 1 {
			continue
		}
		return rep.Records[0], true
	}
}

// mapping asks for group g and parses the answer as a group mapping.
func (c *nameClient) mapping(iid uint32, g string) (replicate.GroupMapping, error, bool) {
	c.t.Helper()
	r, ok := c.ask(iid, replicate.GroupNameEID(iid, netip.MustParseAddr(g)), 2*time.Second)
	if !ok {
		return replicate.GroupMapping{}, nil, false
	}
	m, err := replicate.ParseGroupRecord(&r)
	return m, err, true
}

func groupsOf(m replicate.GroupMapping) []string {
	var out []string
	for _, g := range m.Groups {
		out = append(out, g.String())
	}
	return out
}

// TestGroupNameConfigured: the Map-Server answers group-name lookups from
// its configured mappings with the most specific range covering the group
// (many:1 — two ranges naming one G-RLOC — and 1:many — one range naming
// two); a group no range covers, or the wrong instance-ID, gets a negative
// reply carrying the name; so does a name that is not a group name (an
// unregistered distinguished-name EID).
func TestGroupNameConfigured(t *testing.T) {
	c := msConfig()
	c.MapServer.GroupMappings = []replicate.GroupMapping{
		groupMapping("232.1.0.0/16", "239.255.0.50"),
		groupMapping("232.2.0.0/16", "239.255.0.50"),
		groupMapping("232.1.5.0/24", "239.255.0.60", "239.255.0.61"),
	}
	ms := newEngine(t, c, nil)
	cl := newNameClient(t, ms.Addr())
	for _, tc := range []struct {
		group string
		geid  string
		want  []string
	}{
		{"232.1.1.1", "232.1.0.0/16", []string{"239.255.0.50"}},
		{"232.2.200.3", "232.2.0.0/16", []string{"239.255.0.50"}},
		{"232.1.5.7", "232.1.5.0/24", []string{"239.255.0.60", "239.255.0.61"}},
	} {
		m, err, ok := cl.mapping(provIID, tc.group)
		if !ok || err != nil {
			t.Fatalf("%s: reply %v, %v", tc.group, ok, err)
		}
		if m.IID != provIID || m.GEID != netip.MustParsePrefix(tc.geid) || !slices.Equal(groupsOf(m), tc.want) {
			t.Errorf("%s: answered with %s, want range %s -> %v", tc.group, m.String(), tc.geid, tc.want)
		}
	}
	for _, tc := range []struct {
		iid   uint32
		group string
	}{{provIID, "232.9.9.9"}, {provIID + 1, "232.1.1.1"}} {
		eid := replicate.GroupNameEID(tc.iid, netip.MustParseAddr(tc.group))
		r, ok := cl.ask(tc.iid, eid, 2*time.Second)
		if !ok {
			t.Fatalf("[%d]%s: no reply", tc.iid, tc.group)
		}
		if len(r.Locators) != 0 || r.Action != wire.ActionNativelyForward || !addrEqual(&r.EID, &eid) {
			t.Errorf("[%d]%s: want a negative reply for the name, got %+v", tc.iid, tc.group, r)
		}
	}
	before := ms.Stats().Msgs[wire.TypeMapRequest].Ignored
	if _, ok := cl.ask(provIID, wire.IIDAddress(provIID, netip.Addr{}), 0); ok {
		t.Fatal("unexpected reply")
	}
	other := wire.Address{AFI: wire.AFILCAF, LCAF: wire.LCAF{Type: wire.LCAFInstanceID, IID: provIID,
		Addrs: []wire.Address{wire.NameAddress("printer-3")}}}
	// Any other name is a distinguished-name EID nobody registered here
	// (TestEIDNameRegistered): a negative reply carrying it.
	if r, ok := cl.ask(provIID, other, 2*time.Second); !ok || len(r.Locators) != 0 || r.Action != wire.ActionNativelyForward || !addrEqual(&r.EID, &other) {
		t.Errorf("a name that is not a group name: %v %+v, want a negative reply", ok, r)
	}
	if got := ms.Stats().Msgs[wire.TypeMapRequest].Ignored; got <= before {
		t.Errorf("ignored requests %d -> %d, want counted", before, got)
	}
	if got := ms.Stats().GroupNameReplies; got != 3 {
		t.Errorf("GroupNameReplies = %d, want 3", got)
	}
}

// TestGroupNameConfigBad: a configured mapping without groups, with a
// unicast G-EID or configured twice is refused by New with the entry named.
func TestGroupNameConfigBad(t *testing.T) {
	for name, gms := range map[string][]replicate.GroupMapping{
		"no groups":  {{IID: provIID, GEID: netip.MustParsePrefix("232.1.0.0/16")}},
		"unicast":    {groupMapping("10.0.0.0/8", "239.1.1.1")},
		"twice":      {groupMapping("232.1.0.0/16", "239.1.1.1"), groupMapping("232.1.0.0/16", "239.1.1.2")},
		"bad G-RLOC": {groupMapping("232.1.0.0/16", "10.9.9.9")},
	} {
		c := msConfig()
		c.MapServer.GroupMappings = gms
		c.Listen = []netip.AddrPort{lo4Any}
		e, err := New(c, nil)
		if err == nil {
			e.Close()
			t.Errorf("%s: accepted", name)
			continue
		}
		if !slices.ContainsFunc([]string{"group_mappings[0]", "group_mappings[1]"}, func(s string) bool { return strings.Contains(err.Error(), s) }) {
			t.Errorf("%s: error %q does not name the entry", name, err)
		}
	}
}

// registerName sends a provider's Map-Register of m (TTL ttl minutes, 0
// withdraws) signed with key and reports whether a Map-Notify came back.
func registerName(t *testing.T, conn *net.UDPConn, ms netip.AddrPort, key AuthKey, m replicate.GroupMapping, ttl uint32) bool {
	t.Helper()
	r, err := m.Record(ttl, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	r.TTL = ttl
	reg := wire.MapRegister{WantMapNotify: true, Nonce: newNonce(), Auth: wire.NewAuth(key.KeyID, key.Alg, false),
		Records: []wire.Record{r}}
	return sendRegister(t, conn, ms, key, &reg)
}

// sendRegister signs reg with key, sends it to ms from conn and reports
// whether a verified Map-Notify for it came back.
func sendRegister(t *testing.T, conn *net.UDPConn, ms netip.AddrPort, key AuthKey, reg *wire.MapRegister) bool {
	t.Helper()
	b, err := reg.AppendSigned(nil, []byte(key.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDPAddrPort(b, ms); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9000)
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, _, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return false
	}
	var nt wire.MapNotify
	return wire.VerifyMapNotify(buf[:n], []byte(key.Secret), &nt) == nil && nt.Nonce == reg.Nonce
}

// TestGroupNameRegistered: a provider registers group names (a Map-Register
// whose EID is "group-<range>" in its instance-ID), authorised by a site
// prefix covering the range; the Map-Server answers lookups with it, lists
// it, and forgets it on a TTL-0 withdrawal. A range outside the site, or a
// wrong key, is refused and counted.
func TestGroupNameRegistered(t *testing.T) {
	site := SiteConfig{Name: "provider", Keys: []AuthKey{testKey}, Prefixes: []SitePrefix{
		{EIDPrefix: EIDPrefix{IID: provIID, Prefix: netip.MustParsePrefix("232.0.0.0/8")}, AcceptMoreSpecifics: true}}}
	ms := newEngine(t, msConfig(site), nil)
	prov := listenUDP(t)
	cl := newNameClient(t, ms.Addr())
	gm := groupMapping("232.3.0.0/16", "239.255.0.70", "239.255.0.71")
	if !registerName(t, prov, ms.Addr(), testKey, gm, 10) {
		t.Fatal("no Map-Notify for the group-name registration")
	}
	m, err, ok := cl.mapping(provIID, "232.3.4.5")
	if !ok || err != nil || m.GEID != gm.GEID || !slices.Equal(groupsOf(m), []string{"239.255.0.70", "239.255.0.71"}) {
		t.Fatalf("lookup after registering: %v %v %s", ok, err, m.String())
	}
	regs := ms.Registrations()
	if len(regs) != 1 || regs[0].Name != "group-232.3.0.0/16" || regs[0].Site != "provider" || regs[0].EID.IID != provIID {
		t.Errorf("registrations: %+v", regs)
	}

	rejected := ms.Stats().RegistrationsRejected
	if registerName(t, prov, ms.Addr(), testKey, groupMapping("233.1.0.0/16", "239.255.0.80"), 10) {
		t.Error("a range outside the site's prefixes was registered")
	}
	if registerName(t, prov, ms.Addr(), badKey, groupMapping("232.4.0.0/16", "239.255.0.80"), 10) {
		t.Error("a registration with the wrong key was accepted")
	}
	st := ms.Stats()
	if st.RegistrationsRejected <= rejected || st.Msgs[wire.TypeMapRegister].BadAuth == 0 {
		t.Errorf("refusals not counted: rejected %d -> %d, bad auth %d", rejected, st.RegistrationsRejected, st.Msgs[wire.TypeMapRegister].BadAuth)
	}
	if r, ok := cl.ask(provIID, replicate.GroupNameEID(provIID, netip.MustParseAddr("232.4.1.1")), 2*time.Second); !ok || len(r.Locators) != 0 {
		t.Errorf("a refused registration is answered: %v %+v", ok, r)
	}

	registerName(t, prov, ms.Addr(), testKey, gm, 0)
	waitFor(t, 2*time.Second, "the withdrawal", func() bool { return len(ms.Registrations()) == 0 })
	if r, ok := cl.ask(provIID, replicate.GroupNameEID(provIID, netip.MustParseAddr("232.3.4.5")), 2*time.Second); !ok || len(r.Locators) != 0 {
		t.Errorf("a withdrawn group name is still answered: %v %+v", ok, r)
	}
}

// TestGroupNameLookupThroughMapServer: an ETR with the lookup method asks a
// real Map-Server/Map-Resolver (not a fake) and registers the G-RLOC the
// configured mapping names.
func TestGroupNameLookupThroughMapServer(t *testing.T) {
	r := newRig(t)
	c := msConfig()
	c.MapServer.GroupMappings = []replicate.GroupMapping{groupMapping("232.1.0.0/16", "239.7.7.8")}
	mr := newEngine(t, c, nil)
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayLookup, LookupIID: provIID, MapResolvers: []netip.AddrPort{mr.Addr()}}
	}
	e, l := r.startETR("127.0.0.1") // the reply goes to the ITR-RLOC: loopback here
	l.inject(t, join("10.1.1.1", "232.1.1.1"))
	r.waitRLE("G-RLOC from the Map-Server's mapping", addrs("239.7.7.8"))
	if g := e.UnderlayGroupFor(0, srcEID, grpEID); g != netip.MustParseAddr("239.7.7.8") {
		t.Fatalf("chose %v", g)
	}
	if n := mr.Stats().GroupNameReplies; n == 0 {
		t.Error("the Map-Server counted no group-name reply")
	}
}
