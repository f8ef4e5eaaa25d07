package wire

import (
	"errors"
	"net/netip"
	"testing"
)

// The interconnect messages travel as shared extension messages (type 15,
// RFC 8113 §3) with rloc's sub-types 4080..4085 (docs/interconnect.md): the
// first two bytes are 0xff and 0xf0..0xf5.

// Map-Subscribe: nonce 2122232425262728, HMAC-SHA-256-128 (zeroed), new
// subscription (id 0), lifetime 3600 s, ITR-RLOC 192.0.2.1, filters
// [7]10.1.0.0/16 and [8]::/0 (all of instance-ID 8).
//
//	0000  ff f0 00 01 21 22 23 24  25 26 27 28 00 02 00 10   sub-type 4080, A=0, 1 RLOC, nonce, auth
//	0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00   authentication data
//	0020  00 00 00 00 00 00 0e 10  00 02 00 00 00 01 c0 00   id 0, lifetime 3600, 2 filters, RLOC
//	0030  02 01 00 10 40 03 00 00  02 00 00 0a 00 00 00 07   filter /16, IID LCAF 7
//	0040  00 01 0a 01 00 00 00 00  40 03 00 00 02 00 00 16   10.1.0.0; filter /0, IID LCAF
//	0050  00 00 00 08 00 02 00 00  00 00 00 00 00 00 00 00   IID 8, AFI 2, ::
//	0060  00 00 00 00 00 00
var goldenMapSubscribe = []byte{
	0xff, 0xf0, 0x00, 0x01, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x00, 0x02, 0x00, 0x10,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x00,
	0x02, 0x01, 0x00, 0x10, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x07,
	0x00, 0x01, 0x0a, 0x01, 0x00, 0x00, 0x00, 0x00, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x16,
	0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

// Map-Subscribe-Ack: status partial (1), no authentication, subscription 42,
// granted lifetime 1800 s.
//
//	0000  ff f1 01 00 21 22 23 24  25 26 27 28 00 00 00 00   sub-type 4081, status 1, nonce, no auth
//	0010  00 00 00 2a 00 00 07 08                            id 42, lifetime 1800
var goldenMapSubscribeAck = []byte{
	0xff, 0xf1, 0x01, 0x00, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x07, 0x08,
}

// Map-Bulk-Request: first page (no cookie), at most 100 records per page,
// scope [7]10.0.0.0/8.
//
//	0000  ff f2 00 01 31 32 33 34  35 36 37 38 00 64 00 00   sub-type 4082, 1 prefix, max 100, no cookie
//	0010  00 08 40 03 00 00 02 00  00 0a 00 00 00 07 00 01   /8, IID LCAF 7
//	0020  0a 00 00 00                                        10.0.0.0
var goldenMapBulkRequest = []byte{
	0xff, 0xf2, 0x00, 0x01, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x00, 0x64, 0x00, 0x00,
	0x00, 0x08, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01,
	0x0a, 0x00, 0x00, 0x00,
}

// Map-Bulk-Request for everything (A), next page: cookie deadbeef.
//
//	0000  ff f2 80 00 31 32 33 34  35 36 37 38 00 00 00 04   A, 0 prefixes, max 0, cookie length 4
//	0010  de ad be ef
var goldenMapBulkRequestAll = []byte{
	0xff, 0xf2, 0x80, 0x00, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x00, 0x00, 0x00, 0x04,
	0xde, 0xad, 0xbe, 0xef,
}

// Map-Bulk-Reply: more pages (M), cookie deadbeef, one record: [7]10.1.0.0/16,
// TTL 1440, A, map-version 5, locator 192.0.2.1 p1 w100 R.
//
//	0000  ff f3 80 01 31 32 33 34  35 36 37 38 00 04 de ad   sub-type 4083, M, 1 record, cookie
//	0010  be ef 00 00 05 a0 01 10  10 00 00 05 40 03 00 00   record TTL 1440, 1 loc, /16, A, v5
//	0020  02 00 00 0a 00 00 00 07  00 01 0a 01 00 00 01 64
//	0030  ff 00 00 01 00 01 c0 00  02 01
var goldenMapBulkReply = []byte{
	0xff, 0xf3, 0x80, 0x01, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x00, 0x04, 0xde, 0xad,
	0xbe, 0xef, 0x00, 0x00, 0x05, 0xa0, 0x01, 0x10, 0x10, 0x00, 0x00, 0x05, 0x40, 0x03, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x00, 0x01, 0x64,
	0xff, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
}

// Map-Solicit-Request for the whole map-cache (A), no authentication (the
// field with algorithm 0 and no data), at most 32 records per page, no
// cookie, requester 2001:db8::1.
//
//	0000  ff f4 80 00 41 42 43 44  45 46 47 48 00 00 00 00   sub-type 4084, A, nonce, no auth
//	0010  00 20 00 00 00 02 20 01  0d b8 00 00 00 00 00 00   max 32, no cookie, requester AFI 2
//	0020  00 00 00 00 00 01
var goldenMapSolicitRequest = []byte{
	0xff, 0xf4, 0x80, 0x00, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x20, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
}

// Map-Solicit-Response: last page, no authentication, responder
// 192.0.2.99, one negative map-cache entry 198.51.100.0/24, 15 minutes left,
// action drop.
//
//	0000  ff f5 00 01 41 42 43 44  45 46 47 48 00 00 00 00   sub-type 4085, 1 record, nonce, no auth
//	0010  00 00 00 01 c0 00 02 63  00 00 00 0f 00 18 60 00   no cookie, responder, TTL 15, 0 locs, /24, drop
//	0020  00 00 00 01 c6 33 64 00
var goldenMapSolicitResponse = []byte{
	0xff, 0xf5, 0x00, 0x01, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x63, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x18, 0x60, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xc6, 0x33, 0x64, 0x00,
}

var (
	msxNonce1 = Nonce{0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28}
	msxNonce2 = Nonce{0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38}
	msxNonce3 = Nonce{0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48}
)

func sampleMapSubscribe() *MapSubscribe {
	return &MapSubscribe{
		Nonce:    msxNonce1,
		Auth:     Auth{Alg: AuthHMACSHA256128, Data: make([]byte, 16)},
		Lifetime: 3600,
		ITRRLOCs: []Address{IPAddress(netip.MustParseAddr("192.0.2.1"))},
		Filters: []EIDRecord{
			{MaskLen: 16, EID: IIDAddress(7, netip.MustParseAddr("10.1.0.0"))},
			{MaskLen: 0, EID: IIDAddress(8, netip.MustParseAddr("::"))},
		},
	}
}

func sampleBulkRecord() Record {
	return Record{
		TTL: 1440, MaskLen: 16, Authoritative: true, MapVersion: 5,
		EID: IIDAddress(7, netip.MustParseAddr("10.1.0.0")),
		Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true,
			Address: IPAddress(netip.MustParseAddr("192.0.2.1"))}},
	}
}

func TestInterconnectGolden(t *testing.T) {
	cases := []struct {
		name   string
		m, p   msg2Codec
		golden []byte
		sub    SharedSubType
	}{
		{"Map-Subscribe", sampleMapSubscribe(), &MapSubscribe{}, goldenMapSubscribe, SubTypeMapSubscribe},
		{"Map-Subscribe-Ack", &MapSubscribeAck{Nonce: msxNonce1, Status: SubscribePartial, SubscriptionID: 42, Lifetime: 1800},
			&MapSubscribeAck{}, goldenMapSubscribeAck, SubTypeMapSubscribeAck},
		{"Map-Bulk-Request", &MapBulkRequest{Nonce: msxNonce2, MaxRecords: 100,
			Scope: []EIDRecord{{MaskLen: 8, EID: IIDAddress(7, netip.MustParseAddr("10.0.0.0"))}}},
			&MapBulkRequest{}, goldenMapBulkRequest, SubTypeMapBulkRequest},
		{"Map-Bulk-Request all", &MapBulkRequest{Nonce: msxNonce2, All: true, Cookie: []byte{0xde, 0xad, 0xbe, 0xef}},
			&MapBulkRequest{}, goldenMapBulkRequestAll, SubTypeMapBulkRequest},
		{"Map-Bulk-Reply", &MapBulkReply{Nonce: msxNonce2, More: true, Cookie: []byte{0xde, 0xad, 0xbe, 0xef},
			Records: []Record{sampleBulkRecord()}}, &MapBulkReply{}, goldenMapBulkReply, SubTypeMapBulkReply},
		{"Map-Solicit-Request", &MapSolicitRequest{Nonce: msxNonce3, All: true, MaxRecords: 32,
			Requester: IPAddress(netip.MustParseAddr("2001:db8::1"))},
			&MapSolicitRequest{}, goldenMapSolicitRequest, SubTypeMapSolicitRequest},
		{"Map-Solicit-Response", &MapSolicitResponse{Nonce: msxNonce3, Responder: IPAddress(netip.MustParseAddr("192.0.2.99")),
			Records: []Record{{TTL: 15, MaskLen: 24, Action: ActionDrop, EID: IPAddress(netip.MustParseAddr("198.51.100.0"))}}},
			&MapSolicitResponse{}, goldenMapSolicitResponse, SubTypeMapSolicitResponse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg2Golden(t, c.m, c.p, c.golden, true)
			if typ, _ := PeekType(c.golden); typ != TypeSharedExtension {
				t.Fatalf("PeekType %v", typ)
			}
			if st, err := PeekSharedSubType(c.golden); err != nil || st != c.sub || st.String() != c.name[:len(st.String())] {
				t.Fatalf("PeekSharedSubType %v %v", st, err)
			}
			// Every other interconnect parser refuses this message.
			for _, o := range cases {
				if o.sub != c.sub {
					if err := o.p.Parse(c.golden); !errors.Is(err, ErrBadType) {
						t.Fatalf("%s parsed as %s: %v", c.name, o.name, err)
					}
				}
			}
		})
	}
}

func TestInterconnectBad(t *testing.T) {
	var sub MapSubscribe
	var breq MapBulkRequest
	var brep MapBulkReply
	var sreq MapSolicitRequest
	var sresp MapSolicitResponse
	cases := []struct {
		name string
		p    msg2Codec
		b    []byte
		want error
	}{
		{"subscribe RLOC count 255", &sub, msg2Patched(goldenMapSubscribe, 3, 255), ErrTruncated},
		{"subscribe filter count 0xff02", &sub, msg2Patched(goldenMapSubscribe, 40, 0xff), ErrTruncated},
		{"subscribe all with filters", &sub, msg2Patched(goldenMapSubscribe, 2, 0x80), ErrBadValue},
		{"subscribe auth length 5", &sub, msg2Patched(goldenMapSubscribe, 15, 5), ErrBadValue},
		{"bulk request scope count 255", &breq, msg2Patched(goldenMapBulkRequest, 3, 255), ErrTruncated},
		{"bulk request empty scope", &breq, msg2Patched(goldenMapBulkRequestAll, 2, 0), ErrBadValue},
		{"bulk request all with scope", &breq, msg2Patched(goldenMapBulkRequest, 2, 0x80), ErrBadValue},
		{"bulk request cookie beyond", &breq, msg2Patched(goldenMapBulkRequestAll, 15, 5), ErrTruncated},
		{"bulk reply record count 255", &brep, msg2Patched(goldenMapBulkReply, 3, 255), ErrTruncated},
		{"bulk reply locator count 255", &brep, msg2Patched(goldenMapBulkReply, 22, 255), ErrTruncated},
		{"bulk reply cookie length 0x0104", &brep, msg2Patched(goldenMapBulkReply, 12, 1), ErrTruncated},
		{"solicit request scope count 1", &sreq, msg2Patched(goldenMapSolicitRequest, 3, 1), ErrTruncated},
		{"solicit request bad requester AFI", &sreq, msg2Patched(goldenMapSolicitRequest, 21, 9), ErrBadAFI},
		{"solicit request auth length 5", &sreq, msg2Patched(goldenMapSolicitRequest, 15, 5), ErrBadValue},
		{"solicit response record count 255", &sresp, msg2Patched(goldenMapSolicitResponse, 3, 255), ErrTruncated},
		{"solicit response more without cookie", &sresp, msg2Patched(goldenMapSolicitResponse, 2, 0x80), ErrBadValue},
		{"not type 15", &sub, goldenMapReferral, ErrBadType},
	}
	for _, c := range cases {
		if err := c.p.Parse(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}

	// Append refuses what Parse refuses.
	s := sampleMapSubscribe()
	s.All = true
	if _, err := s.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Errorf("append subscribe all with filters: %v", err)
	}
	s = sampleMapSubscribe()
	s.ITRRLOCs = make([]Address, 256)
	if _, err := s.Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("append 256 RLOCs: %v", err)
	}
	if _, err := (&MapBulkRequest{}).Append(nil); !errors.Is(err, ErrBadValue) {
		t.Errorf("append empty bulk request: %v", err)
	}
	if _, err := (&MapBulkRequest{All: true, Cookie: make([]byte, 0x10000)}).Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("append 64 KiB cookie: %v", err)
	}
	if _, err := (&MapBulkReply{More: true}).Append(nil); !errors.Is(err, ErrBadValue) {
		t.Errorf("append more without cookie: %v", err)
	}
	if _, err := (&MapSolicitResponse{Records: make([]Record, 256)}).Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("append 256 records: %v", err)
	}
	if _, err := (&MapSolicitRequest{All: true, Requester: Address{AFI: 99}}).Append(nil); !errors.Is(err, ErrBadAFI) {
		t.Errorf("append bad requester: %v", err)
	}
	if _, err := PeekSharedSubType([]byte{0xff}); !errors.Is(err, ErrTruncated) {
		t.Errorf("PeekSharedSubType on one byte: %v", err)
	}
}

func TestSubscriptionAuth(t *testing.T) {
	key := []byte("msx-agreement-key")
	msg := append([]byte(nil), goldenMapSubscribe...)
	if err := VerifySubscription(msg, key); !errors.Is(err, ErrAuth) {
		t.Fatalf("unsigned subscribe verified: %v", err)
	}
	if err := SignSubscription(msg, key); err != nil {
		t.Fatal(err)
	}
	if err := VerifySubscription(msg, key); err != nil {
		t.Fatalf("good key: %v", err)
	}
	if err := VerifySubscription(msg, []byte("other")); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := VerifySubscription(msg2Patched(msg, 38, 0xff), key); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered lifetime: %v", err)
	}
	// An acknowledgement signed with SHA-1 (full 20-byte form).
	ack := &MapSubscribeAck{Nonce: msxNonce1, Auth: Auth{KeyID: 3, Alg: AuthHMACSHA1_96, Data: make([]byte, 20)}, SubscriptionID: 9, Lifetime: 60}
	b, err := ack.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := SignSubscription(b, key); err != nil {
		t.Fatal(err)
	}
	if err := VerifySubscription(b, key); err != nil {
		t.Fatalf("ack good key: %v", err)
	}
	if err := VerifySubscription(b, key[1:]); !errors.Is(err, ErrAuth) {
		t.Fatalf("ack wrong key: %v", err)
	}
	var got MapSubscribeAck
	if err := got.Parse(b); err != nil || got.Auth.KeyID != 3 || len(got.Auth.Data) != 20 {
		t.Fatalf("signed ack parse: %v %+v", err, got)
	}
	if err := SignSubscription(goldenMapBulkRequest, key); !errors.Is(err, ErrAuth) {
		t.Fatalf("sign a bulk request without the S bit: %v", err)
	}
	if err := SignSubscription(goldenMapSolicitRequest, key); !errors.Is(err, ErrBadType) {
		t.Fatalf("sign a solicit request: %v", err)
	}
}

func FuzzMapSubscribe(f *testing.F) {
	nameSeeds[*MapSubscribe](f)
	f.Add(goldenMapSubscribe)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapSubscribe
		msg2FuzzStable(t, data, &a, &b)
	})
}

func FuzzMapSubscribeAck(f *testing.F) {
	f.Add(goldenMapSubscribeAck)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapSubscribeAck
		msg2FuzzStable(t, data, &a, &b)
	})
}

func FuzzMapBulkRequest(f *testing.F) {
	nameSeeds[*MapBulkRequest](f)
	f.Add(goldenMapBulkRequest)
	f.Add(goldenMapBulkRequestAll)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapBulkRequest
		msg2FuzzStable(t, data, &a, &b)
	})
}

func FuzzMapBulkReply(f *testing.F) {
	nameSeeds[*MapBulkReply](f)
	f.Add(goldenMapBulkReply)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapBulkReply
		msg2FuzzStable(t, data, &a, &b)
	})
}

func FuzzMapSolicitRequest(f *testing.F) {
	f.Add(goldenMapSolicitRequest)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapSolicitRequest
		msg2FuzzStable(t, data, &a, &b)
	})
}

func FuzzMapSolicitResponse(f *testing.F) {
	nameSeeds[*MapSolicitResponse](f)
	f.Add(goldenMapSolicitResponse)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b MapSolicitResponse
		msg2FuzzStable(t, data, &a, &b)
	})
}

func BenchmarkMapBulkReplyParse(b *testing.B) {
	var m MapBulkReply
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Parse(goldenMapBulkReply); err != nil {
			b.Fatal(err)
		}
	}
	msg2ReportPerMsg(b)
}
