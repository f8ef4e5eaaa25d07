package wire

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// Distinguished-name EIDs (AFI 17, RFC 8060 §3) in interconnect scopes and
// records, and in the Map-Register and Map-Notify records that carry them
// to and from a Map-Server: they round-trip, and every truncation of them
// is refused.

// nameEID is name in iid: bare for 0, else in an instance-ID LCAF.
func nameEID(iid uint32, name string) Address {
	if iid == 0 {
		return NameAddress(name)
	}
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: iid, Addrs: []Address{NameAddress(name)}}}
}

func nameRecordSample(iid uint32, name string) Record {
	return Record{TTL: 1440, EID: nameEID(iid, name),
		Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true, Address: IPAddress(netip.MustParseAddr("192.0.2.1"))}}}
}

// nameMessages are interconnect, register and notify messages whose
// scopes and records are distinguished names (and prefixes beside them).
func nameMessages() []msg2Codec {
	long := strings.Repeat("n", 250) + ".ex"
	scope := []EIDRecord{{EID: nameEID(0, "printer.example")}, {EID: nameEID(5, "*.lab.example")},
		{MaskLen: 8, EID: IIDAddress(7, netip.MustParseAddr("10.0.0.0"))}, {EID: nameEID(0, long)}}
	recs := []Record{nameRecordSample(0, "printer.example"), nameRecordSample(5, "cam.lab.example"), sampleBulkRecord(), nameRecordSample(9, long)}
	return []msg2Codec{
		&MapBulkRequest{Nonce: msxNonce2, MaxRecords: 100, Scope: scope},
		&MapBulkReply{Nonce: msxNonce2, More: true, Cookie: []byte{1, 2, 3}, Records: recs},
		&MapSubscribe{Nonce: msxNonce1, Auth: Auth{Alg: AuthHMACSHA256128, Data: make([]byte, 16)}, Lifetime: 60,
			ITRRLOCs: []Address{IPAddress(netip.MustParseAddr("192.0.2.1"))}, Filters: scope},
		&MapSolicitResponse{Nonce: msxNonce3, Responder: IPAddress(netip.MustParseAddr("192.0.2.99")), Records: recs},
	}
}

// nameRegister is a Map-Register of names; its Map-Notify is notify.
func nameRegister() (reg MapRegister, notify MapNotify) {
	recs := []Record{nameRecordSample(0, "printer.example"), nameRecordSample(5, "cam.lab.example")}
	reg = MapRegister{ProxyReply: true, WantMapNotify: true, Nonce: msxNonce1, Auth: NewAuth(1, AuthHMACSHA256128, false), Records: recs}
	notify = MapNotify{Nonce: msxNonce1, Auth: NewAuth(1, AuthHMACSHA256128, false), Records: recs}
	return reg, notify
}

func TestInterconnectNames(t *testing.T) {
	reg, notify := nameRegister()
	msgs := append(nameMessages(), &reg, &notify)
	for _, m := range msgs {
		enc, err := m.Append(nil)
		if err != nil || len(enc) != m.Len() {
			t.Fatalf("%T: Append %v, %d bytes, Len %d", m, err, len(enc), m.Len())
		}
		var p msg2Codec
		switch m.(type) {
		case *MapBulkRequest:
			p = &MapBulkRequest{}
		case *MapBulkReply:
			p = &MapBulkReply{}
		case *MapSubscribe:
			p = &MapSubscribe{}
		case *MapSolicitResponse:
			p = &MapSolicitResponse{}
		case *MapRegister:
			p = &MapRegister{}
		case *MapNotify:
			p = &MapNotify{}
		}
		if err := p.Parse(enc); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		enc2, err := p.Append(nil)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%T: round trip %v\n%x\n%x", m, err, enc, enc2)
		}
		for i := range enc {
			if p.Parse(enc[:i]) == nil {
				t.Fatalf("%T: %d-byte prefix of %d parsed", m, i, len(enc))
			}
		}
	}
	// The names read back, bare and in their instance-ID.
	var br MapBulkRequest
	b, _ := nameMessages()[0].Append(nil)
	if err := br.Parse(b); err != nil {
		t.Fatal(err)
	}
	if e := &br.Scope[0].EID; e.AFI != AFIDistName || e.Name != "printer.example" {
		t.Errorf("scope[0] %+v", e)
	}
	if iid, in, ok := br.Scope[1].EID.Unwrap(); !ok || iid != 5 || in.AFI != AFIDistName || in.Name != "*.lab.example" {
		t.Errorf("scope[1] %d %+v", iid, in)
	}
	// A name with a NUL inside cannot be written.
	bad := MapBulkRequest{Nonce: msxNonce2, Scope: []EIDRecord{{EID: NameAddress("a\x00b")}}}
	if _, err := bad.Append(nil); err == nil {
		t.Error("a name with NUL encoded")
	}
}

// nameSeeds are fuzz seeds of the name messages of type T.
func nameSeeds[T any](f *testing.F) {
	reg, notify := nameRegister()
	for _, m := range append(nameMessages(), &reg, &notify) {
		if _, ok := m.(T); !ok {
			continue
		}
		b, err := m.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
