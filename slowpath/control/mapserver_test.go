package control

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

func msConfig(sites ...SiteConfig) Config {
	return Config{MapServer: &MapServerConfig{Sites: sites}, MapResolver: &MapResolverConfig{}}
}

func etrConfig(ms netip.AddrPort, key AuthKey, maps ...Mapping) *ETRConfig {
	return &ETRConfig{
		MapServers:       []MapServerPeer{{Addr: ms, Key: key}},
		Mappings:         maps,
		RegisterInterval: time.Minute,
		RetryInterval:    50 * time.Millisecond,
	}
}

func TestRegisterGoodKeyNotified(t *testing.T) {
	for _, fam := range []struct {
		name string
		ms   netip.AddrPort
	}{{"ipv4", lo4Any}, {"ipv6", lo6Any}} {
		t.Run(fam.name, func(t *testing.T) {
			c := msConfig(siteConfig("a", "10.1.0.0/16", true))
			c.Listen = []netip.AddrPort{fam.ms}
			ms := newEngine(t, c, nil)
			etr := newEngine(t, Config{Listen: []netip.AddrPort{fam.ms}, ETR: etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
			waitFor(t, 5*time.Second, "Map-Notify verified by the ETR", func() bool { return etr.Stats().RegisterNotified >= 1 })
			regs := ms.Registrations()
			if len(regs) != 1 || regs[0].Site != "a" || regs[0].EID.Prefix != netip.MustParsePrefix("10.1.2.0/24") ||
				!slices.Equal(regs[0].RLOCs, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
				t.Fatalf("registrations = %+v", regs)
			}
			st := ms.Stats()
			if st.Msg(wire.TypeMapRegister).BadAuth != 0 || st.Msg(wire.TypeMapNotify).Sent < 1 || st.RegistrationsAccepted < 1 {
				t.Fatalf("MS stats: register %+v notify %+v", st.Msg(wire.TypeMapRegister), st.Msg(wire.TypeMapNotify))
			}
			if es := etr.Stats(); es.Msg(wire.TypeMapNotify).BadAuth != 0 {
				t.Fatalf("ETR counted bad Map-Notify auth: %+v", es.Msg(wire.TypeMapNotify))
			}
		})
	}
}

func TestRegisterSHA1(t *testing.T) {
	k := AuthKey{KeyID: 2, Alg: wire.AuthHMACSHA1_96, Secret: "old-peer"}
	s := siteConfig("a", "10.1.0.0/16", true)
	s.Keys = []AuthKey{testKey, k}
	ms := newEngine(t, msConfig(s), nil)
	etr := newEngine(t, Config{ETR: etrConfig(ms.Addr(), k, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "Map-Notify", func() bool { return etr.Stats().RegisterNotified >= 1 })
}

func TestRegisterWrongKeyRejected(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	c := etrConfig(ms.Addr(), badKey, mapping("10.1.2.0/24", "192.0.2.1"))
	c.Retries = 2
	etr := newEngine(t, Config{ETR: c}, nil)
	waitFor(t, 5*time.Second, "the ETR to give up the round", func() bool { return etr.Stats().RegisterUnconfirmed >= 1 })
	st := ms.Stats()
	if got := st.Msg(wire.TypeMapRegister).BadAuth; got != 3 {
		t.Errorf("MS bad-auth count = %d, want 3 (1 register + 2 retries)", got)
	}
	if n := len(ms.Registrations()); n != 0 || st.RegistrationsAccepted != 0 {
		t.Errorf("wrong-key registration installed: %d registrations, %d accepted", n, st.RegistrationsAccepted)
	}
	if st.Msg(wire.TypeMapNotify).Sent != 0 {
		t.Errorf("Map-Notify sent for a wrong key")
	}
	if es := etr.Stats(); es.RegisterNotified != 0 || es.RegisterRetries != 2 {
		t.Errorf("ETR: notified %d, retries %d", es.RegisterNotified, es.RegisterRetries)
	}
}

func TestRegisterOutsideSiteRejected(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", false)), nil)
	c := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	c.NoMapNotify = true
	c.RegisterInterval = 20 * time.Millisecond
	newEngine(t, Config{ETR: c}, nil)
	waitFor(t, 5*time.Second, "rejections", func() bool { return ms.Stats().RegistrationsRejected >= 2 })
	if n := len(ms.Registrations()); n != 0 {
		t.Fatalf("more-specific registered without accept-more-specifics: %d", n)
	}
}

// TestNotifyBadAuthIgnored: a Map-Notify with the right nonce but signed with
// another key does not confirm the registration.
func TestNotifyBadAuthIgnored(t *testing.T) {
	fake, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	c := etrConfig(fake.LocalAddr().(*net.UDPAddr).AddrPort(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	c.Retries = 1
	etr := newEngine(t, Config{ETR: c}, nil)
	buf := make([]byte, 2048)
	fake.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := fake.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	var reg wire.MapRegister
	if err := wire.VerifyMapRegister(buf[:n], []byte(testKey.Secret), &reg); err != nil {
		t.Fatalf("ETR's Map-Register does not verify: %v", err)
	}
	if !reg.WantMapNotify {
		t.Fatal("M bit not set")
	}
	notify := wire.MapNotify{Nonce: reg.Nonce, Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false), Records: reg.Records}
	msg, err := notify.AppendSigned(nil, []byte(badKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	fake.WriteToUDPAddrPort(msg, from)
	waitFor(t, 5*time.Second, "bad Map-Notify counted", func() bool { return etr.Stats().Msg(wire.TypeMapNotify).BadAuth == 1 })
	// The right key confirms.
	msg, _ = notify.AppendSigned(nil, []byte(testKey.Secret))
	fake.WriteToUDPAddrPort(msg, from)
	waitFor(t, 5*time.Second, "good Map-Notify", func() bool { return etr.Stats().RegisterNotified == 1 })
}

func TestRegistrationExpires(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.RegistrationTimeout = 300 * time.Millisecond
	ms := newEngine(t, c, nil)
	ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	ec.RegisterInterval = 100 * time.Millisecond
	etr := newEngine(t, Config{ETR: ec}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return len(ms.Registrations()) == 1 })
	// Refreshes keep it alive past the timeout.
	waitFor(t, 5*time.Second, "several refreshes", func() bool { return ms.Stats().RegistrationsAccepted >= 6 })
	if n := len(ms.Registrations()); n != 1 || ms.Stats().RegistrationsExpired != 0 {
		t.Fatalf("refreshed registration expired: %d live, %d expired", n, ms.Stats().RegistrationsExpired)
	}
	etr.Close()
	waitFor(t, 5*time.Second, "expiry", func() bool { return len(ms.Registrations()) == 0 })
	if ms.Stats().RegistrationsExpired != 1 {
		t.Fatalf("expired = %d", ms.Stats().RegistrationsExpired)
	}
}

func TestDeregisterOnStop(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	ec.DeregisterOnStop = true
	etr := newEngine(t, Config{ETR: ec}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return len(ms.Registrations()) == 1 })
	etr.Close()
	waitFor(t, 5*time.Second, "deregistration", func() bool { return len(ms.Registrations()) == 0 })
	if ms.Stats().RegistrationsExpired != 0 {
		t.Fatal("removed by expiry, not by the TTL 0 register")
	}
}

func TestTwoETRsMerge(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	for i, r := range []string{"192.0.2.1", "192.0.2.2"} {
		c := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", r))
		c.XTRID[0] = byte(i + 1)
		c.SiteID = 7
		e := newEngine(t, Config{ETR: c}, nil)
		waitFor(t, 5*time.Second, "notify", func() bool { return e.Stats().RegisterNotified >= 1 })
	}
	regs := ms.Registrations()
	if len(regs) != 2 || regs[0].XTRID == regs[1].XTRID {
		t.Fatalf("registrations = %+v", regs)
	}
	var got []netip.Addr
	for _, l := range ms.MergedRLOCs(0, netip.MustParseAddr("10.1.2.9")) {
		got = append(got, l.Address.IP)
	}
	slices.SortFunc(got, netip.Addr.Compare)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	if !slices.Equal(got, want) {
		t.Fatalf("merged RLOCs = %v, want %v", got, want)
	}
}

// TestMergeBitRLE: registrations with the merge bit from several xTRs of an
// (S,G) combine their RLE hops into one RLE (RFC 8378, the RE draft).
func TestMergeBitRLE(t *testing.T) {
	ms := newEngine(t, msConfig(siteConfig("a", "10.1.0.0/16", true)), nil)
	cl, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rle := func(hop string) wire.Address {
		return wire.RLEAddress(wire.RLENode{Level: 128, Address: wire.IPAddress(netip.MustParseAddr(hop))})
	}
	for i, hop := range []string{"192.0.2.10", "192.0.2.11"} {
		reg := wire.MapRegister{Merge: true, WantMapNotify: true, XTRIDPresent: true, Nonce: newNonce(),
			Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
			Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.0")),
				Locators: []wire.Locator{{Priority: 1, Weight: 1, MPriority: 1, MWeight: 1, Address: rle(hop)}}}}}
		reg.XTRID[15] = byte(i + 1)
		b, err := reg.AppendSigned(nil, []byte(testKey.Secret))
		if err != nil {
			t.Fatal(err)
		}
		cl.WriteToUDPAddrPort(b, ms.Addr())
		buf := make([]byte, 2048)
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := cl.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var nt wire.MapNotify
		if err := wire.VerifyMapNotify(buf[:n], []byte(testKey.Secret), &nt); err != nil || nt.Nonce != reg.Nonce {
			t.Fatalf("Map-Notify: %v (nonce %v want %v)", err, nt.Nonce, reg.Nonce)
		}
		if hops := len(nt.Records[0].Locators[0].Address.LCAF.RLE); hops != i+1 {
			t.Fatalf("Map-Notify %d carries %d RLE hops, want the merged %d", i, hops, i+1)
		}
	}
	locs := ms.MergedRLOCs(0, netip.MustParseAddr("10.1.2.1"))
	if len(locs) != 1 || len(locs[0].Address.LCAF.RLE) != 2 {
		t.Fatalf("merged = %+v, want one RLE with 2 hops", locs)
	}
}
