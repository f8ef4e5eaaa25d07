package regstore_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

// TestNotifyMirrorsRegister: a Map-Server answers a Map-Register with a
// Map-Notify in the length and coverage the register verified with (an
// RFC-strict ETR gets truncated records-only HMACs, a deployed one full
// whole-message ones), unless the site key sets them; the Result reports
// the variant and the key.
func TestNotifyMirrorsRegister(t *testing.T) {
	strict := wire.AuthVariant{Alg: wire.AuthHMACSHA256128, Records: true}
	deployed := wire.AuthVariant{Alg: wire.AuthHMACSHA256128, Full: true}
	fullKey := keyA
	fullKey.Length, fullKey.Coverage = regstore.LengthFull, regstore.CoverageMessage
	for _, tc := range []struct {
		name string
		key  regstore.Key // the site's
		sent wire.AuthVariant
		want wire.AuthVariant // of the Map-Notify
	}{
		{"strict mirrored", keyA, strict, wire.AuthVariant{Alg: wire.AuthHMACSHA256128, Records: true, KeyIDSet: true}},
		{"deployed mirrored", keyA, deployed, wire.AuthVariant{Alg: wire.AuthHMACSHA256128, Full: true, KeyIDSet: true}},
		{"site key overrides", fullKey, strict, wire.AuthVariant{Alg: wire.AuthHMACSHA256128, Full: true, KeyIDSet: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := reqtest.NewClock(t0)
			out := &reqtest.Sender{Clock: clk}
			ss, err := regstore.NewSites([]*regstore.Site{{Name: "a", Keys: []regstore.Key{tc.key},
				Prefixes: []regstore.SitePrefix{pfx(0, "10.2.0.0/16")}}})
			if err != nil {
				t.Fatal(err)
			}
			st := regstore.New(clk, out, regstore.Kind[key, []netip.Addr](prefixKind()), ss, nil, regstore.Config{})
			m := wire.MapRegister{WantMapNotify: true, XTRIDPresent: true, XTRID: xtr1, Nonce: wire.Nonce{1, 2},
				Auth: wire.NewAuthVariant(keyA.KeyID, tc.sent), Records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}
			raw, err := m.AppendSigned(nil, keyA.Secret)
			if err != nil {
				t.Fatal(err)
			}
			var reg wire.MapRegister
			if err := reg.Parse(raw); err != nil {
				t.Fatal(err)
			}
			res := st.Register(etr1, raw, &reg)
			sent := tc.sent
			sent.KeyIDSet = true
			if res.Accepted != 1 || !res.Verified || res.Auth != sent || res.Key == nil || res.Key.KeyID != keyA.KeyID {
				t.Fatalf("Register: %+v", res)
			}
			notes := out.Take()
			if len(notes) != 1 {
				t.Fatalf("%d Map-Notifies", len(notes))
			}
			var mn wire.MapNotify
			if err := mn.Parse(notes[0].Msg); err != nil {
				t.Fatal(err)
			}
			_, v, err := regstore.Verify(notes[0].Msg, &mn.Auth, []regstore.Key{keyA})
			if err != nil || v != tc.want {
				t.Fatalf("Map-Notify verified as %+v (%v), want %+v", v, err, tc.want)
			}
		})
	}
}

// TestVerifyKeySelection: the key is chosen by Key ID and algorithm; an
// unknown Key ID, an algorithm the key is not for, and algorithm 0 are
// refused before any HMAC.
func TestVerifyKeySelection(t *testing.T) {
	m := wire.MapRegister{Nonce: wire.Nonce{9}, Auth: wire.NewAuthVariant(7, wire.AuthVariant{Alg: wire.AuthHMACSHA1_96, Full: true}),
		Records: []wire.Record{eidRecord(0, "10.2.0.0/16", 10, "192.0.2.1")}}
	k7 := regstore.Key{KeyID: 7, Alg: wire.AuthHMACSHA1_96, Secret: []byte("seven")}
	raw, err := m.AppendSigned(nil, k7.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var p wire.MapRegister
	if err := p.Parse(raw); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		keys []regstore.Key
		want error
	}{
		{"match", []regstore.Key{keyA, k7}, nil},
		{"unknown key ID", []regstore.Key{keyA, {KeyID: 8, Alg: wire.AuthHMACSHA1_96, Secret: k7.Secret}}, regstore.ErrUnknownKey},
		{"other algorithm", []regstore.Key{{KeyID: 7, Alg: wire.AuthHMACSHA256128, Secret: k7.Secret}}, regstore.ErrUnknownKey},
		{"wrong secret", []regstore.Key{{KeyID: 7, Alg: wire.AuthHMACSHA1_96, Secret: []byte("eight")}}, regstore.ErrAuth},
	} {
		k, v, err := regstore.Verify(raw, &p.Auth, tc.keys)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err == nil && (k.KeyID != 7 || v != (wire.AuthVariant{Alg: wire.AuthHMACSHA1_96, Full: true, KeyIDSet: true})) {
			t.Errorf("%s: key %+v variant %+v", tc.name, k, v)
		}
	}
	p.Auth.Alg = wire.AuthNone
	if _, _, err := regstore.Verify(raw, &p.Auth, []regstore.Key{k7}); !errors.Is(err, regstore.ErrNoAuth) {
		t.Errorf("algorithm 0: %v", err)
	}
}

// TestKeyVariant: what a key signs with, alone (full length, whole
// message: what OOR and lispers.net require) and answering a message (its
// length and coverage), each setting of the key winning.
func TestKeyVariant(t *testing.T) {
	k := regstore.Key{KeyID: 0, Alg: wire.AuthHMACSHA1_96, Secret: []byte("s")}
	if v := k.Variant(nil); v != (wire.AuthVariant{Alg: wire.AuthHMACSHA1_96, Full: true}) {
		t.Errorf("default: %+v", v)
	}
	like := wire.AuthVariant{Alg: wire.AuthHMACSHA1_96, Records: true}
	if v := k.Variant(&like); v != like {
		t.Errorf("mirror: %+v", v)
	}
	k.Length, k.Coverage = regstore.LengthTruncated, regstore.CoverageMessage
	if v := k.Variant(nil); v != (wire.AuthVariant{Alg: wire.AuthHMACSHA1_96}) {
		t.Errorf("truncated, message: %+v", v)
	}
	k.Length, k.Coverage = regstore.LengthFull, regstore.CoverageRecords
	if v := k.Variant(&wire.AuthVariant{}); v != (wire.AuthVariant{Alg: wire.AuthHMACSHA1_96, Full: true, Records: true}) {
		t.Errorf("full, records over a mirror: %+v", v)
	}
	var buf []byte
	if a := k.Auth(nil, &buf); len(a.Data) != 20 || !a.Records || a.KeyID != 0 || a.Alg != wire.AuthHMACSHA1_96 {
		t.Errorf("Auth: %+v", a)
	}
}
