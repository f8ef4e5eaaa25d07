package slowpath

import (
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// TestAuthKeySettings: the sending settings convert to the store's key and
// to the field a register carries (full length, whole message by default);
// a legacy layout with a non-zero Key ID and unknown values are errors
// naming the key.
func TestAuthKeySettings(t *testing.T) {
	k := AuthKey{KeyID: 0, Alg: wire.AuthHMACSHA1_96, Secret: "s", Layout: LayoutLegacy}
	if err := k.Validate("map_servers[0].key"); err != nil {
		t.Fatal(err)
	}
	if a := k.Auth(); len(a.Data) != 20 || a.Records || a.KeyID != 0 || a.Alg != wire.AuthHMACSHA1_96 {
		t.Errorf("default: %+v", a)
	}
	k.HMACLength, k.Coverage = HMACLengthTruncated, CoverageRecords
	rk := k.RegKey()
	if rk.Length != regstore.LengthTruncated || rk.Coverage != regstore.CoverageRecords || rk.Layout != regstore.LayoutLegacy {
		t.Errorf("RegKey: %+v", rk)
	}
	if a := k.Auth(); len(a.Data) != 12 || !a.Records {
		t.Errorf("truncated, records: %+v", a)
	}
	k.HMACLength, k.Coverage, k.Layout = HMACLengthFull, CoverageMessage, LayoutRFC9301
	if rk := k.RegKey(); rk.Length != regstore.LengthFull || rk.Coverage != regstore.CoverageMessage || rk.Layout != regstore.LayoutRFC9301 {
		t.Errorf("RegKey: %+v", rk)
	}
	for _, tc := range []struct {
		mod  func(*AuthKey)
		want string
	}{
		{func(k *AuthKey) { k.KeyID, k.Layout = 3, LayoutLegacy }, "k.id:"},
		{func(k *AuthKey) { k.Layout = "16bit" }, "k.layout:"},
		{func(k *AuthKey) { k.HMACLength = "long" }, "k.hmac_length:"},
		{func(k *AuthKey) { k.Coverage = "trailer" }, "k.coverage:"},
		{func(k *AuthKey) { k.Alg = 4 }, "k.alg:"},
	} {
		c := AuthKey{KeyID: 0, Alg: wire.AuthHMACSHA256128HKDF, Secret: "s"}
		tc.mod(&c)
		if err := c.Validate("k"); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", c, err, tc.want)
		}
	}
}

// TestAuthStats: each verified message counts once per dimension, and the
// totals are reported under the API's kebab-case names.
func TestAuthStats(t *testing.T) {
	var s Stats
	s.Msgs[wire.TypeMapRegister].Auth.Count(wire.AuthVariant{Alg: wire.AuthHMACSHA1_96, Full: true, KeyIDSet: false})
	s.Msgs[wire.TypeMapNotify].Auth.Count(wire.AuthVariant{Alg: wire.AuthHMACSHA256128HKDF, Records: true, KeyIDSet: true})
	got := map[string]uint64{}
	a := s.AuthTotals()
	a.Each(func(name string, v uint64) { got[name] = v })
	want := map[string]uint64{"auth_hmac_sha1_96": 1, "auth_hmac_sha256_128": 0, "auth_hmac_sha256_128_hkdf": 1,
		"auth_full": 1, "auth_truncated": 1, "auth_coverage_message": 1, "auth_coverage_records": 1,
		"auth_key_id_set": 1, "auth_key_id_zero": 1}
	if len(got) != len(want) {
		t.Fatalf("counters %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}
