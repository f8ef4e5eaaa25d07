package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"net/netip"
	"testing"
)

// Map-Notify answering goldenMapRegister: same nonce, records, xTR-ID and
// site-ID, I bit set, HMAC-SHA-1-96 (zeroed here) (RFC 9301 §5.7):
//
//	0000  48 00 00 01 a1 b2 c3 d4  e5 f6 07 18 01 01 00 0c
//	0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 03
//	0020  01 18 10 00 00 00 40 03  00 00 02 00 00 0a 00 00
//	0030  03 e8 00 01 c0 a8 00 00  01 64 ff 00 00 05 00 01
//	0040  cb 00 71 05 0f 0e 0d 0c  0b 0a 09 08 07 06 05 04
//	0050  03 02 01 00 00 00 00 00  00 00 00 2a
//
// 48: type 4 with I (0x8); 00 00; 01: one record; nonce a1..18 (the
// register's); Key ID 1, Algorithm ID 1, data length 12, 12 zero bytes; the
// register's record; xTR-ID 0f..00; site-ID 42.
var goldenMapNotify = []byte{
	0x48, 0x00, 0x00, 0x01, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x01, 0x01, 0x00, 0x0c,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
	0x01, 0x18, 0x10, 0x00, 0x00, 0x00, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x0a, 0x00, 0x00,
	0x03, 0xe8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x00, 0x01, 0x64, 0xff, 0x00, 0x00, 0x05, 0x00, 0x01,
	0xcb, 0x00, 0x71, 0x05, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04,
	0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
}

func goldenMapNotifyMsg() *MapNotify {
	return &MapNotify{
		XTRIDPresent: true,
		Nonce:        Nonce{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18},
		Auth:         Auth{KeyID: 1, Alg: AuthHMACSHA1_96, Data: make([]byte, 12)},
		Records:      goldenRegisterRecords(),
		XTRID:        goldenXTRID,
		SiteID:       42,
	}
}

func TestMapNotifyGolden(t *testing.T) {
	checkGolden(t, goldenMapNotifyMsg(), goldenMapNotify)
	checkTruncations[MapNotify](t, goldenMapNotify)

	// A Map-Server builds the Map-Notify from the register it received: the
	// nonce is echoed byte for byte.
	var reg MapRegister
	signedReg, err := goldenMapRegisterMsg().AppendSigned(nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMapRegister(signedReg, testKey, &reg); err != nil {
		t.Fatal(err)
	}
	n := MapNotify{
		XTRIDPresent: reg.XTRIDPresent, Nonce: reg.Nonce, Records: reg.Records,
		XTRID: reg.XTRID, SiteID: reg.SiteID,
		Auth: Auth{KeyID: 1, Alg: AuthHMACSHA1_96, Data: make([]byte, 12)},
	}
	b, err := n.Append(nil)
	if err != nil || !bytes.Equal(b, goldenMapNotify) {
		t.Fatalf("notify built from the register (%v)\n got %x\nwant %x", err, b, goldenMapNotify)
	}
	if !bytes.Equal(b[4:12], signedReg[4:12]) {
		t.Fatal("nonce not echoed")
	}

	signed, err := n.AppendSigned(nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha1.New, testKey)
	mac.Write(goldenMapNotify)
	if want := mac.Sum(nil)[:12]; !bytes.Equal(signed[16:28], want) {
		t.Fatalf("HMAC-SHA-1-96 %x, crypto/hmac says %x", signed[16:28], want)
	}
	var got MapNotify
	if err := VerifyMapNotify(signed, testKey, &got); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := VerifyMapNotify(signed, []byte("other"), &got); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	checkTamper(t, signed, func(b []byte) error {
		var m MapNotify
		return VerifyMapNotify(b, testKey, &m)
	})
	n.Auth = Auth{}
	unauth, err := n.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMapNotify(unauth, testKey, &got); !errors.Is(err, ErrAuth) {
		t.Fatalf("algorithm 0: %v, want ErrAuth", err)
	}

	// The I and R bits (draft-ietf-lisp-nat-traversal, as Wireshark reads them).
	m := goldenMapNotifyMsg()
	m.XTRIDPresent, m.XTRID, m.SiteID = false, XTRID{}, 0
	m.RTR = true
	m.RTRAuth = Auth{KeyID: 0, Alg: AuthHMACSHA256128, Data: bytes.Repeat([]byte{0x5a}, 16)}
	b = checkRoundTrip(t, m, goldenMapNotify)
	if b[0] != 0x44 {
		t.Fatalf("R bit: first byte %02x, want 44", b[0])
	}
	if !bytes.Equal(b[len(b)-20:], append([]byte{0, 2, 0, 16}, m.RTRAuth.Data...)) {
		t.Fatalf("MS-RTR authentication field not at the end: %x", b)
	}
	checkTruncations[MapNotify](t, b)
}

func TestMapNotifyAck(t *testing.T) {
	// A Map-Notify-Ack has the layout of a Map-Notify, with type 5.
	ack := (*MapNotifyAck)(goldenMapNotifyMsg())
	b, err := ack.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{0x58}, goldenMapNotify[1:]...)
	if !bytes.Equal(b, want) || ack.Len() != len(want) {
		t.Fatalf("Map-Notify-Ack\n got %x\nwant %x", b, want)
	}
	checkGolden(t, ack, want)
	checkTruncations[MapNotifyAck](t, want)

	var n MapNotify
	if err := n.Parse(want); !errors.Is(err, ErrBadType) {
		t.Fatalf("ack parsed as Map-Notify: %v", err)
	}
	var a MapNotifyAck
	if err := a.Parse(goldenMapNotify); !errors.Is(err, ErrBadType) {
		t.Fatalf("Map-Notify parsed as ack: %v", err)
	}
	signed, err := ack.AppendSigned(nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMapNotifyAck(signed, testKey, &a); err != nil {
		t.Fatalf("verify ack: %v", err)
	}
	if err := VerifyMapNotify(signed, testKey, &n); !errors.Is(err, ErrBadType) {
		t.Fatalf("ack verified as Map-Notify: %v", err)
	}
	checkTamper(t, signed, func(b []byte) error {
		var m MapNotifyAck
		return VerifyMapNotifyAck(b, testKey, &m)
	})
}

func TestMapNotifyRoundTrip(t *testing.T) {
	for _, e := range testEIDs {
		t.Run(e.name, func(t *testing.T) {
			m := &MapNotify{
				Nonce: Nonce{7, 7, 7, 7, 7, 7, 7, 7},
				Auth:  Auth{KeyID: 2, Alg: AuthHMACSHA256128, Data: make([]byte, 32)},
				Records: []Record{{TTL: 10, MaskLen: e.masklen, MapVersion: 1, EID: e.eid, Locators: []Locator{
					{Priority: 254, Weight: 10, MPriority: 255, Reachable: true,
						Address: IPAddress(netip.MustParseAddr("2001:db8::5"))},
				}}},
			}
			b := checkRoundTrip(t, m, goldenMapNotify)
			checkTruncations[MapNotify](t, b)
			m.XTRIDPresent, m.XTRID, m.SiteID = true, goldenXTRID, 1
			b = checkRoundTrip(t, m, goldenMapNotify)
			checkTruncations[MapNotify](t, b)
			ack := (*MapNotifyAck)(m)
			b = checkRoundTrip(t, ack, nil)
			checkTruncations[MapNotifyAck](t, b)
		})
	}
}

func TestMapNotifyBadInput(t *testing.T) {
	var m MapNotify
	b := append([]byte(nil), goldenMapNotify...)
	b[3] = 255
	if err := m.Parse(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("record count 255: %v", err)
	}
	for _, typ := range []byte{0x10, 0x20, 0x30, 0x60, 0x70, 0x80} {
		b := append([]byte(nil), goldenMapNotify...)
		b[0] = typ | b[0]&0x0f
		if err := m.Parse(b); !errors.Is(err, ErrBadType) {
			t.Fatalf("type byte %02x: %v, want ErrBadType", b[0], err)
		}
	}
	if _, err := (&MapNotify{Records: make([]Record, 256)}).Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("256 records: %v", err)
	}
}

func mapNotifySeeds() [][]byte {
	signed, err := goldenMapNotifyMsg().AppendSigned(nil, testKey)
	if err != nil {
		panic(err)
	}
	ack, err := (*MapNotifyAck)(goldenMapNotifyMsg()).AppendSigned(nil, testKey)
	if err != nil {
		panic(err)
	}
	m := goldenMapNotifyMsg()
	m.RTR, m.RTRAuth = true, Auth{Alg: AuthHMACSHA1_96, Data: bytes.Repeat([]byte{1}, 20)}
	rtr, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	return [][]byte{goldenMapNotify, signed, ack, rtr}
}

func FuzzMapNotify(f *testing.F) {
	nameSeeds[*MapNotify](f)
	for _, s := range mapNotifySeeds() {
		f.Add(s)
	}
	ackBytes := mapNotifySeeds()[2]
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStable[MapNotify](t, data, goldenMapNotify)
		checkStable[MapNotifyAck](t, data, ackBytes)
	})
}

func TestMapNotifySeedCorpus(t *testing.T) {
	seeds := mapNotifySeeds()
	for i, s := range seeds {
		var m MapNotify
		var a MapNotifyAck
		if m.Parse(s) != nil && a.Parse(s) != nil {
			t.Fatalf("seed %d parses neither as Map-Notify nor as Map-Notify-Ack", i)
		}
	}
	checkSeedCorpus(t, "FuzzMapNotify", seeds)
}
