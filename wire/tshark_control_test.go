package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// tsharkCase is one control message written to the pcap and what tshark
// must decode from it.
type tsharkCase struct {
	name    string
	msg     []byte
	typ     MessageType
	nonce   *Nonce   // nil: the message has none (ECM)
	records int      // -1: no record count field to check
	eids    []string // EID prefixes in order, as "addr" (tshark fields *.ipv4/*.ipv6)
	iids    []uint32 // instance-IDs tshark must report (lisp.lcaf.iid)
	rlocs   []string // locator addresses in order
	prios   []uint8  // locator priorities in order
	extra   func(t *testing.T, layers map[string]any)
}

func mustAppend(t *testing.T, what string) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return b
	}
}

func tsNonce(i byte) Nonce { return Nonce{0xde, 0xad, 0xbe, 0xef, 0, 0, 0x10, i} }

// TestTsharkControlMessages writes every control message type that tshark
// decodes (1, 2, 3, 4, 6, 7, 8) as UDP 4342 packets over IPv4 and IPv6, and
// checks tshark's decoding against what was encoded.
func TestTsharkControlMessages(t *testing.T) {
	a := netip.MustParseAddr
	v4eid := IIDAddress(1000, a("10.1.0.0"))
	v6eid := IIDAddress(7, a("2001:db8:1::"))
	loc := func(prio, w uint8, ip string) Locator {
		return Locator{Priority: prio, Weight: w, MPriority: 255, Reachable: true, Address: IPAddress(a(ip))}
	}
	sg := SGAddress(1000, netip.MustParsePrefix("10.1.1.1/32"), netip.MustParsePrefix("239.1.1.1/32"))
	rle := RLEAddress(RLENode{Level: 0, Address: IPAddress(a("192.0.2.10"))}, RLENode{Level: 1, Address: IPAddress(a("192.0.2.11"))})

	var cases []tsharkCase

	// Type 1: Map-Request, IPv4 EID in IID 1000, ITR-RLOCs v4 + v6.
	n1 := tsNonce(1)
	req := MapRequest{SMR: true, Nonce: n1, SourceEID: IPAddress(a("10.1.0.5")),
		ITRRLOCs: []Address{IPAddress(a("192.0.2.1")), IPAddress(a("2001:db8::1"))},
		Records:  []EIDRecord{{MaskLen: 24, EID: v4eid}}}
	cases = append(cases, tsharkCase{name: "map-request-v4", msg: mustAppend(t, "request")(req.Append(nil)),
		typ: TypeMapRequest, nonce: &n1, records: 1, iids: []uint32{1000},
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkUint(t, l, "lisp.irc"); got != 1 {
				t.Errorf("IRC %d, want 1", got)
			}
			if got := tsharkField(t, l, "lisp.mreq.itr_rloc_ipv4"); got != "192.0.2.1" {
				t.Errorf("ITR-RLOC v4 %s", got)
			}
			if got := tsharkField(t, l, "lisp.mreq.itr_rloc_ipv6"); got != "2001:db8::1" {
				t.Errorf("ITR-RLOC v6 %s", got)
			}
			if got := tsharkUint(t, l, "lisp.mreq.record.prefix.length"); got != 24 {
				t.Errorf("prefix length %d", got)
			}
			if got := tsharkField(t, l, "lisp.mreq.flags.smr"); got != "1" && got != "True" {
				t.Errorf("SMR flag %q", got)
			}
		}})
	// Type 1 with a plain IPv6 EID.
	n2 := tsNonce(2)
	req6 := MapRequest{Probe: true, Nonce: n2, ITRRLOCs: []Address{IPAddress(a("2001:db8::2"))},
		Records: []EIDRecord{{MaskLen: 48, EID: IPAddress(a("2001:db8:5::"))}}}
	cases = append(cases, tsharkCase{name: "map-request-v6", msg: mustAppend(t, "request6")(req6.Append(nil)),
		typ: TypeMapRequest, nonce: &n2, records: 1,
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkField(t, l, "lisp.mreq.record.prefix.ipv6"); got != "2001:db8:5::" {
				t.Errorf("EID %s", got)
			}
		}})

	// Type 1 subscribing (RFC 9437 §4): N bit on the record, I bit with
	// xTR-ID and site-ID after it; tshark must still read the records.
	n2s := tsNonce(12)
	sub := MapRequest{Nonce: n2s, XTRIDPresent: true, XTRID: XTRID{1, 2, 3}, SiteID: 9,
		ITRRLOCs: []Address{IPAddress(a("192.0.2.1"))}, Records: []EIDRecord{{Notify: true, MaskLen: 24, EID: v4eid}}}
	cases = append(cases, tsharkCase{name: "map-request-subscribe", msg: mustAppend(t, "subscribe")(sub.Append(nil)),
		typ: TypeMapRequest, nonce: &n2s, records: 1, iids: []uint32{1000},
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkUint(t, l, "lisp.mreq.record.prefix.length"); got != 24 {
				t.Errorf("prefix length %d", got)
			}
		}})

	// Type 2: Map-Reply with IPv4-in-IID, IPv6-in-IID and an (S,G) record with an RLE.
	n3 := tsNonce(3)
	rep := MapReply{Nonce: n3, Records: []Record{
		{TTL: 1440, MaskLen: 24, Authoritative: true, EID: v4eid, Locators: []Locator{loc(1, 70, "192.0.2.1"), loc(2, 30, "2001:db8::9")}},
		{TTL: 60, MaskLen: 48, EID: v6eid, Locators: []Locator{loc(5, 100, "198.51.100.1")}},
		{TTL: 15, MaskLen: 32, EID: sg, Locators: []Locator{{Priority: 255, MPriority: 1, MWeight: 100, Reachable: true, Address: rle}}},
	}}
	cases = append(cases, tsharkCase{name: "map-reply", msg: mustAppend(t, "reply")(rep.Append(nil)),
		typ: TypeMapReply, nonce: &n3, records: 3, iids: []uint32{1000, 7},
		rlocs: []string{"192.0.2.1", "2001:db8::9", "198.51.100.1"}, prios: []uint8{1, 2, 5, 255},
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkFields(l, "lisp.lcaf.iid.ipv4"); len(got) != 1 || got[0] != "10.1.0.0" {
				t.Errorf("IID EID v4 %q", got)
			}
			if got := tsharkFields(l, "lisp.lcaf.iid.ipv6"); len(got) != 1 || got[0] != "2001:db8:1::" {
				t.Errorf("IID EID v6 %q", got)
			}
			if got := tsharkField(t, l, "lisp.lcaf.mcinfo.src.ipv4"); got != "10.1.1.1" {
				t.Errorf("(S,G) source %s", got)
			}
			if got := tsharkField(t, l, "lisp.lcaf.mcinfo.grp.ipv4"); got != "239.1.1.1" {
				t.Errorf("(S,G) group %s", got)
			}
			if got := tsharkFields(l, "lisp.lcaf.rle_entry.ipv4"); strings.Join(got, ",") != "192.0.2.10,192.0.2.11" {
				t.Errorf("RLE entries %q", got)
			}
			if got := tsharkFields(l, "lisp.lcaf.rle_entry.level"); strings.Join(got, ",") != "0,1" {
				t.Errorf("RLE levels %q", got)
			}
			if got := tsharkFields(l, "lisp.mapping.ttl"); strings.Join(got, ",") != "1440,60,15" {
				t.Errorf("record TTLs %q", got)
			}
		}})

	// Type 3: Map-Register signed with HMAC-SHA-256, want-map-notify, xTR-ID.
	n4 := tsNonce(4)
	reg := MapRegister{WantMapNotify: true, ProxyReply: true, XTRIDPresent: true, Nonce: n4,
		Auth:    NewAuth(0, AuthHMACSHA256128, false),
		Records: []Record{{TTL: 1440, MaskLen: 24, EID: v4eid, Locators: []Locator{loc(1, 100, "192.0.2.1")}}},
		XTRID:   XTRID{1, 2, 3}, SiteID: 42}
	regb := mustAppend(t, "register")(reg.AppendSigned(nil, []byte("secret")))
	cases = append(cases, tsharkCase{name: "map-register", msg: regb, typ: TypeMapRegister, nonce: &n4, records: 1,
		iids: []uint32{1000}, rlocs: []string{"192.0.2.1"}, prios: []uint8{1},
		extra: func(t *testing.T, l map[string]any) {
			for _, f := range []string{"lisp.mreg.flags.wmn", "lisp.mreg.flags.pmr", "lisp.mreg.flags.xtrid"} {
				if got := tsharkField(t, l, f); got != "1" && got != "True" {
					t.Errorf("%s = %q", f, got)
				}
			}
		}})

	// Type 4: Map-Notify echoing the register's nonce, IPv6 EID.
	not := MapNotify{Nonce: n4, Auth: NewAuth(0, AuthHMACSHA1_96, false),
		Records: []Record{{TTL: 1440, MaskLen: 48, EID: v6eid, Locators: []Locator{loc(3, 50, "2001:db8::7")}}}}
	cases = append(cases, tsharkCase{name: "map-notify", msg: mustAppend(t, "notify")(not.AppendSigned(nil, []byte("secret"))),
		typ: TypeMapNotify, nonce: &n4, records: 1, iids: []uint32{7}, rlocs: []string{"2001:db8::7"}, prios: []uint8{3}})

	// Type 6: Map-Referral with an MS-ACK record.
	n5 := tsNonce(5)
	ref := MapReferral{Nonce: n5, Records: []Record{{TTL: 1440, MaskLen: 16, Action: Action(ReferralMSAck),
		EID: IPAddress(a("10.2.0.0")), Locators: []Locator{loc(0, 0, "192.0.2.50")}}}}
	cases = append(cases, tsharkCase{name: "map-referral", msg: mustAppend(t, "referral")(ref.Append(nil)),
		typ: TypeMapReferral, nonce: &n5, records: 1, eids: []string{"10.2.0.0"}, rlocs: []string{"192.0.2.50"}, prios: []uint8{0}})

	// Type 7: Info-Request.
	n6 := tsNonce(6)
	info := Info{Nonce: n6, Auth: NewAuth(0, AuthHMACSHA1_96, false), TTL: 1,
		EID: EIDRecord{MaskLen: 32, EID: IPAddress(a("10.3.0.1"))}}
	infob := mustAppend(t, "info")(info.Append(nil))
	if err := SignInfo(infob, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, tsharkCase{name: "info-request", msg: infob, typ: TypeInfo, nonce: &n6, records: -1,
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkField(t, l, "lisp.info.prefix.ipv4"); got != "10.3.0.1" {
				t.Errorf("info EID %s", got)
			}
		}})

	// Type 2 with LISP-SEC data (the golden signed reply): tshark 4.0 reads
	// the S bit and the record, and leaves the authentication data after it
	// undissected.
	secRep := unhex(t, goldenSecMapReply)
	cases = append(cases, tsharkCase{name: "map-reply-lisp-sec", msg: secRep, typ: TypeMapReply, nonce: &secNonce, records: 1,
		rlocs: []string{"192.0.2.1"}, prios: []uint8{1},
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkField(t, l, "lisp.mrep.flags.sec"); got != "1" && got != "True" {
				t.Errorf("S bit %q", got)
			}
		}})

	// Type 8: ECM around the IPv4 Map-Request (inner IPv4), and around the
	// IPv6 one (inner IPv6).
	for i, in := range []struct {
		msg      []byte
		src, dst string
	}{{cases[0].msg, "10.1.0.5", "10.1.0.1"}, {cases[1].msg, "2001:db8:5::5", "2001:db8:5::1"}} {
		e := ECM{Src: a(in.src), Dst: a(in.dst), SrcPort: 61000, DstPort: ControlPort, TTL: 64, Message: in.msg}
		nn := tsNonce(byte(1 + i))
		cases = append(cases, tsharkCase{name: fmt.Sprintf("ecm-%d", i), msg: mustAppend(t, "ecm")(e.Append(nil)),
			typ: TypeECM, nonce: &nn, records: 1,
			extra: func(t *testing.T, l map[string]any) {
				// Both the ECM and the inner Map-Request are decoded.
				if got := tsharkFields(l, "lisp.type"); len(got) != 2 || got[0] != "8" || got[1] != "1" {
					t.Errorf("types %q, want ECM then Map-Request", got)
				}
			}})
	}

	// ECM with LISP-SEC data (the Map-Server's golden one): tshark 4.0 reads
	// the S bit but not the authentication data, so it does not find the
	// inner IP header after it; only the S bit is checked.
	cases = append(cases, tsharkCase{name: "ecm-lisp-sec", msg: goldenSecECM(t), typ: TypeECM, records: -1,
		extra: func(t *testing.T, l map[string]any) {
			if got := tsharkField(t, l, "lisp.ecm.flags.sec"); got != "1" && got != "True" {
				t.Errorf("S bit %q", got)
			}
		}})

	var frames [][]byte
	for i, c := range cases {
		src, dst := a("192.0.2.100"), a("192.0.2.200")
		if i%2 == 1 {
			src, dst = a("2001:db8::100"), a("2001:db8::200")
		}
		frames = append(frames, udpFrame(t, src, dst, 40000+uint16(i), ControlPort, c.msg))
	}
	pkts := tsharkDecode(t, frames)
	if len(pkts) != len(cases) {
		t.Fatalf("tshark decoded %d packets, want %d", len(pkts), len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := pkts[i]
			types := tsharkFields(l, "lisp.type")
			if len(types) == 0 || types[0] != strconv.Itoa(int(c.typ)) {
				t.Fatalf("type %q, want %d", types, c.typ)
			}
			if c.nonce != nil {
				want := binary.BigEndian.Uint64(c.nonce[:])
				got := tsharkFields(l, "lisp.nonce")
				if len(got) == 0 {
					t.Fatalf("no nonce decoded")
				}
				v, err := strconv.ParseUint(got[len(got)-1], 0, 64)
				if err != nil || v != want {
					t.Errorf("nonce %q, want %#x", got, want)
				}
			}
			if c.records >= 0 {
				got := tsharkFields(l, "lisp.records")
				if len(got) == 0 || got[len(got)-1] != strconv.Itoa(c.records) {
					t.Errorf("record count %q, want %d", got, c.records)
				}
			}
			if c.eids != nil {
				got := append(tsharkFields(l, "lisp.mapping.eid.ipv4"), tsharkFields(l, "lisp.mapping.eid.ipv6")...)
				if strings.Join(got, ",") != strings.Join(c.eids, ",") {
					t.Errorf("EIDs %q, want %q", got, c.eids)
				}
			}
			if c.iids != nil {
				got := tsharkFields(l, "lisp.lcaf.iid")
				var want []string
				for _, v := range c.iids {
					want = append(want, strconv.Itoa(int(v)))
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("instance-IDs %q, want %q", got, want)
				}
			}
			if c.rlocs != nil {
				got := tsharkFields(l, "lisp.loc.locator")
				var addrs []string
				for _, s := range got {
					// Older tshark prints just the address, newer "AFI: address".
					if i := strings.LastIndex(s, " "); i >= 0 {
						s = s[i+1:]
					}
					addrs = append(addrs, s)
				}
				if strings.Join(addrs, ",") != strings.Join(c.rlocs, ",") {
					t.Errorf("RLOCs %q, want %q", got, c.rlocs)
				}
			}
			if c.prios != nil {
				got := tsharkFields(l, "lisp.loc.priority")
				var want []string
				for _, p := range c.prios {
					want = append(want, strconv.Itoa(int(p)))
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("priorities %q, want %q", got, want)
				}
			}
			if c.extra != nil {
				c.extra(t, l)
			}
		})
	}
}
