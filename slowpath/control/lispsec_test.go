package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// The ITR's and the Map-Server's shared LISP-SEC key (itr.lisp_sec.key,
// map_server.lisp_sec_key).
const secMSKey = "mapping-system-key"

func secITR(mode slowpath.LispSecMode, key string, mrs ...netip.AddrPort) *ITRConfig {
	c := itrConfig(mrs...)
	c.LispSec = &slowpath.LispSecConfig{Mode: mode, Key: key}
	return c
}

// secMS starts a Map-Server/Map-Resolver with the lisp_sec key and an ETR
// registered with it for 10.1.2.0/24 (proxy: the Map-Server answers).
func secMS(t *testing.T, proxy bool, site SiteConfig, etrKey AuthKey) (ms, etr *Engine) {
	t.Helper()
	c := msConfig(site)
	c.MapServer.LispSecKey = secMSKey
	ms = newEngine(t, c, nil)
	ec := etrConfig(ms.Addr(), etrKey, mapping("10.1.2.0/24", "192.0.2.1"))
	ec.ProxyReply = proxy
	etr = newEngine(t, Config{ETR: ec}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	return ms, etr
}

// TestLispSecResolve: with LISP-SEC required, a lookup through the
// Map-Resolver and Map-Server is answered by the ETR (PKT-AD with the
// MS-OTK, EID-AD from the Map-Server) or by the Map-Server itself (proxy
// reply), verified and installed.
func TestLispSecResolve(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		name := map[bool]string{false: "etr", true: "proxy"}[proxy]
		t.Run(name, func(t *testing.T) {
			ms, etr := secMS(t, proxy, siteConfig("a", "10.1.0.0/16", true), testKey)
			inst := &fakeInstaller{}
			itr := newEngine(t, Config{ITR: secITR(slowpath.LispSecRequired, secMSKey, ms.Addr())}, inst)
			itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
			waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
			if got := inst.positives()[0]; got.Prefix != netip.MustParsePrefix("10.1.2.0/24") {
				t.Fatalf("installed %+v", got)
			}
			is, mss, es := itr.Stats(), ms.Stats(), etr.Stats()
			if is.LispSecVerified != 1 || is.LispSecRefused != 0 || is.LispSecUnsigned != 0 {
				t.Fatalf("ITR verified %d refused %d unsigned %d", is.LispSecVerified, is.LispSecRefused, is.LispSecUnsigned)
			}
			// The Map-Server signs the EID-AD either way; the ETR signs
			// the reply only when it answers.
			wantETR := uint64(1)
			if proxy {
				wantETR = 0
			}
			if mss.LispSecSigned != 1 || es.LispSecSigned != wantETR {
				t.Fatalf("signed: Map-Server %d, ETR %d", mss.LispSecSigned, es.LispSecSigned)
			}
		})
	}
}

// TestLispSecWrongKeys: an ITR-OTK wrapped with a key the Map-Server does
// not have is not unwrapped, the answer comes without LISP-SEC and the ITR
// that requires it installs nothing; a site whose first key is not the one
// the ETR has (the MS-OTK wrapped with the wrong site key) gets no answer
// from the ETR.
func TestLispSecWrongKeys(t *testing.T) {
	t.Run("itr-key", func(t *testing.T) {
		ms, _ := secMS(t, true, siteConfig("a", "10.1.0.0/16", true), testKey)
		inst := &fakeInstaller{}
		c := secITR(slowpath.LispSecRequired, "not-the-key", ms.Addr())
		c.RetransmitInterval = time.Minute
		itr := newEngine(t, Config{ITR: c}, inst)
		itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
		waitFor(t, 5*time.Second, "the unsigned answer refused", func() bool { return itr.Stats().LispSecUnsigned == 1 })
		if ms.Stats().LispSecUnwrapFailed != 1 || len(inst.positives()) != 0 {
			t.Fatalf("unwrap failures %d, installed %+v", ms.Stats().LispSecUnwrapFailed, inst.positives())
		}
	})
	t.Run("site-key", func(t *testing.T) {
		site := siteConfig("a", "10.1.0.0/16", true)
		other := AuthKey{KeyID: 2, Alg: wire.AuthHMACSHA256128, Secret: "first-site-key"}
		site.Keys = []AuthKey{other, testKey} // the MS-OTK is wrapped with the first
		ms, etr := secMS(t, false, site, testKey)
		inst := &fakeInstaller{}
		c := secITR(slowpath.LispSecRequired, secMSKey, ms.Addr())
		c.RetransmitInterval = time.Minute
		itr := newEngine(t, Config{ITR: c}, inst)
		itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
		waitFor(t, 5*time.Second, "the ETR's refusal", func() bool { return etr.Stats().LispSecUnwrapFailed == 1 })
		if n := etr.Stats().Msg(wire.TypeMapReply).Sent; n != 0 || len(inst.positives()) != 0 {
			t.Fatalf("ETR replies %d, installed %+v", n, inst.positives())
		}
	})
}

// fakeMR is a Map-Resolver socket that reads the ITR's LISP-SEC requests
// and answers them as the test says: it holds the lisp_sec key, so it can
// do what a Map-Server or an ETR could.
type fakeMR struct {
	t    *testing.T
	conn *net.UDPConn
}

func newFakeMR(t *testing.T) *fakeMR {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeMR{t: t, conn: c}
}

func (f *fakeMR) addr() netip.AddrPort { return f.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// read returns the next request's nonce and unwrapped ITR-OTK.
func (f *fakeMR) read() (wire.Nonce, [wire.OTKLen]byte, wire.SecHMAC) {
	t := f.t
	t.Helper()
	buf := make([]byte, 2048)
	f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var ecm wire.ECM
	if err := ecm.Parse(buf[:n]); err != nil {
		t.Fatal(err)
	}
	var req wire.MapRequest
	if err := req.Parse(ecm.Message); err != nil {
		t.Fatal(err)
	}
	if !ecm.Security || ecm.Auth.Wrap != wire.SecWrapAES128HKDF || !ecm.Auth.EID.Short || ecm.Auth.EID.KDF != wire.SecKDFSHA256 {
		t.Fatalf("ITR's ECM without the expected LISP-SEC data: %+v", ecm.Auth)
	}
	otk, err := wire.UnwrapOTK(&ecm.Auth, []byte(secMSKey), req.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	return req.Nonce, otk, ecm.Auth.HMAC
}

// secReply builds a Map-Reply for record prefix rec with an EID-AD for
// eidAD signed with eidKey and a PKT-AD signed with the MS-OTK derived from
// pktKey; sign false sends it without LISP-SEC.
func secReply(t *testing.T, nonce wire.Nonce, rec, eidAD string, eidKey, pktKey [wire.OTKLen]byte, sign bool) []byte {
	t.Helper()
	p := netip.MustParsePrefix(rec)
	rep := wire.MapReply{Nonce: nonce, Records: []wire.Record{{TTL: 10, MaskLen: uint8(p.Bits()),
		EID: wire.IPAddress(p.Addr()), Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true,
			Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
	if !sign {
		b, _ := rep.Append(nil)
		return b
	}
	ep := netip.MustParsePrefix(eidAD)
	eid := wire.EIDAuth{KDF: wire.SecKDFSHA256, HMAC: wire.SecHMACSHA256128,
		Records: []wire.EIDRecord{{MaskLen: uint8(ep.Bits()), EID: wire.IPAddress(ep.Addr())}}}
	if err := wire.SignEIDAuth(&eid, eidKey[:]); err != nil {
		t.Fatal(err)
	}
	rep.Security = true
	rep.Auth = wire.MapReplyAuth{Type: wire.MapReplyADLispSec, EID: eid, PKTHMAC: wire.SecHMACSHA256128, PKTMAC: make([]byte, 16)}
	b, err := rep.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	msOTK, _ := wire.DeriveMSOTK(wire.SecKDFSHA256, pktKey, nonce)
	if err := wire.SignMapReply(b, wire.SecHMACSHA256128, msOTK[:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLispSecForgeriesRefused: replies carrying the right nonce, from the
// Map-Resolver asked (a source the ITR accepts), are refused unless their
// LISP-SEC data proves them: the forged 0.0.0.0/0 reply without LISP-SEC
// (downgrade), 0.0.0.0/0 claimed by an ETR that holds the MS-OTK but only
// an EID-AD for 10.1.2.0/24 (over-claim), an EID-AD changed to claim
// 0.0.0.0/0 (tampered), a PKT-AD signed with another OTK (wrong OTK). The
// request stays open through all of them; the genuine reply is installed.
func TestLispSecForgeriesRefused(t *testing.T) {
	mr := newFakeMR(t)
	inst := &fakeInstaller{}
	c := secITR(slowpath.LispSecRequired, secMSKey, mr.addr())
	c.RetransmitInterval = time.Minute // one request: the test answers it
	itr := newEngine(t, Config{ITR: c}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	nonce, otk, h := mr.read()
	if h != wire.SecHMACSHA256128 {
		t.Fatalf("requested HMAC %v", h)
	}
	var wrong [wire.OTKLen]byte
	wrong[0] = 1
	send := func(b []byte, what string, refused, unsigned uint64) {
		t.Helper()
		mr.conn.WriteToUDPAddrPort(b, itr.Addr())
		waitFor(t, 5*time.Second, what, func() bool {
			s := itr.Stats()
			return s.LispSecRefused == refused && s.LispSecUnsigned == unsigned
		})
		if len(inst.positives()) != 0 {
			t.Fatalf("%s installed %+v", what, inst.positives())
		}
	}
	send(secReply(t, nonce, "0.0.0.0/0", "", otk, otk, false), "unsigned 0.0.0.0/0 refused", 0, 1)
	send(secReply(t, nonce, "0.0.0.0/0", "10.1.2.0/24", otk, otk, true), "over-claiming 0.0.0.0/0 refused", 1, 1)
	// The EID-AD's mask changed to 0 after its signing, and the PKT-AD
	// re-signed over that (as an ETR holding the MS-OTK could): only the
	// EID-AD check can catch it.
	tampered := secReply(t, nonce, "0.0.0.0/0", "10.1.2.0/24", otk, otk, true)
	{
		var m wire.MapReply
		if err := m.Parse(tampered); err != nil {
			t.Fatal(err)
		}
		raw := append([]byte(nil), m.Auth.EID.Raw...)
		raw[9] = 0 // the EID-AD record's mask length
		i := len(tampered) - 20 - len(raw)
		copy(tampered[i:], raw)
		msOTK, _ := wire.DeriveMSOTK(wire.SecKDFSHA256, otk, nonce)
		if err := wire.SignMapReply(tampered, wire.SecHMACSHA256128, msOTK[:]); err != nil {
			t.Fatal(err)
		}
	}
	send(tampered, "tampered EID-AD refused", 2, 1)
	send(secReply(t, nonce, "10.1.2.0/24", "10.1.2.0/24", otk, wrong, true), "PKT-AD with a wrong OTK refused", 3, 1)
	send(secReply(t, nonce, "10.1.2.0/24", "10.1.2.0/24", wrong, otk, true), "EID-AD with a wrong OTK refused", 4, 1)
	mr.conn.WriteToUDPAddrPort(secReply(t, nonce, "10.1.2.0/24", "10.1.0.0/16", otk, otk, true), itr.Addr())
	waitFor(t, 5*time.Second, "the genuine reply installed", func() bool { return len(inst.positives()) == 1 })
	if got := inst.positives()[0]; got.Prefix != netip.MustParsePrefix("10.1.2.0/24") || itr.Stats().LispSecVerified != 1 {
		t.Fatalf("installed %+v, verified %d", got, itr.Stats().LispSecVerified)
	}
}

// TestLispSecOnAcceptsUnsigned: in mode on (not required) a reply without
// LISP-SEC data is accepted and counted; one with invalid data is still
// refused.
func TestLispSecOnAcceptsUnsigned(t *testing.T) {
	mr := newFakeMR(t)
	inst := &fakeInstaller{}
	c := secITR(slowpath.LispSecOn, secMSKey, mr.addr())
	c.RetransmitInterval = time.Minute
	itr := newEngine(t, Config{ITR: c}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	nonce, otk, _ := mr.read()
	mr.conn.WriteToUDPAddrPort(secReply(t, nonce, "0.0.0.0/0", "10.1.2.0/24", otk, otk, true), itr.Addr())
	waitFor(t, 5*time.Second, "over-claim refused", func() bool { return itr.Stats().LispSecRefused == 1 })
	mr.conn.WriteToUDPAddrPort(secReply(t, nonce, "10.1.2.0/24", "", otk, otk, false), itr.Addr())
	waitFor(t, 5*time.Second, "unsigned reply installed", func() bool { return len(inst.positives()) == 1 })
	if s := itr.Stats(); s.LispSecUnsigned != 1 {
		t.Fatalf("unsigned %d", s.LispSecUnsigned)
	}
}

// TestLispSecPerIID: LISP-SEC applies to the configured instance-IDs only.
func TestLispSecPerIID(t *testing.T) {
	mr := newFakeMR(t)
	c := secITR(slowpath.LispSecRequired, secMSKey, mr.addr())
	c.LispSec.IIDs = []uint32{7}
	itr := newEngine(t, Config{ITR: c}, &fakeInstaller{})
	itr.Miss(MissEvent{IID: 7, Dst: netip.MustParseAddr("10.1.2.3")})
	mr.read() // fails unless the ECM carries LISP-SEC data
	itr.Miss(MissEvent{IID: 8, Dst: netip.MustParseAddr("10.1.2.3")})
	buf := make([]byte, 2048)
	mr.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := mr.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var ecm wire.ECM
	if err := ecm.Parse(buf[:n]); err != nil || ecm.Security {
		t.Fatalf("IID 8: %v, LISP-SEC %v", err, ecm.Security)
	}
}

// TestLispSecThroughRemoteMapResolver: a Map-Resolver without a Map-Server
// of its own forwards the ITR's ECM to the responsible Map-Server with its
// LISP-SEC data unchanged; the resolution is verified end to end.
func TestLispSecThroughRemoteMapResolver(t *testing.T) {
	ms, etr := secMS(t, false, siteConfig("a", "10.1.0.0/16", true), testKey)
	mr := newEngine(t, Config{MapResolver: &MapResolverConfig{MapServers: []slowpath.RemoteMapServer{{Addr: ms.Addr(),
		Prefixes: []EIDPrefix{{Prefix: netip.MustParsePrefix("10.1.0.0/16")}}}}}}, nil)
	inst := &fakeInstaller{}
	itr := newEngine(t, Config{ITR: secITR(slowpath.LispSecRequired, secMSKey, mr.Addr())}, inst)
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "install", func() bool { return len(inst.positives()) == 1 })
	if mr.Stats().Forwarded != 1 || ms.Stats().LispSecSigned != 1 || etr.Stats().LispSecSigned != 1 || itr.Stats().LispSecVerified != 1 {
		t.Fatalf("forwarded %d, signed by the Map-Server %d and the ETR %d, verified %d", mr.Stats().Forwarded,
			ms.Stats().LispSecSigned, etr.Stats().LispSecSigned, itr.Stats().LispSecVerified)
	}
}

// TestLispSecNegativeReply: a negative Map-Reply to a LISP-SEC request is
// signed by the Map-Resolver (EID-AD of the negative prefix) and installed
// by the ITR that requires LISP-SEC; so is one from a Map-Resolver without
// a Map-Server, with its own key.
func TestLispSecNegativeReply(t *testing.T) {
	for _, own := range []bool{false, true} {
		name := map[bool]string{false: "ms-key", true: "mr-key"}[own]
		t.Run(name, func(t *testing.T) {
			var mr *Engine
			if own {
				mr = newEngine(t, Config{MapResolver: &MapResolverConfig{LispSecKey: secMSKey}}, nil)
			} else {
				mr, _ = secMS(t, false, siteConfig("a", "10.1.0.0/16", true), testKey)
			}
			inst := &fakeInstaller{}
			itr := newEngine(t, Config{ITR: secITR(slowpath.LispSecRequired, secMSKey, mr.Addr())}, inst)
			itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.200.0.1")})
			waitFor(t, 5*time.Second, "negative install", func() bool { return len(inst.negatives()) == 1 })
			if s := itr.Stats(); s.LispSecVerified != 1 || mr.Stats().LispSecSigned != 1 {
				t.Fatalf("verified %d, signed %d", s.LispSecVerified, mr.Stats().LispSecSigned)
			}
		})
	}
}

// TestLispSecPerMapResolver: with itr.lisp_sec.map_resolvers, LISP-SEC
// lookups go to those Map-Resolvers only, the first one listed in
// map_resolvers being skipped.
func TestLispSecPerMapResolver(t *testing.T) {
	plain, sec := newFakeMR(t), newFakeMR(t)
	c := secITR(slowpath.LispSecRequired, secMSKey, plain.addr(), sec.addr())
	c.LispSec.MapResolvers = []netip.AddrPort{sec.addr()}
	c.RetransmitInterval = time.Minute // one try: it must go to sec
	itr := newEngine(t, Config{ITR: c}, &fakeInstaller{})
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	sec.read() // fails unless the LISP-SEC request reached sec
}
