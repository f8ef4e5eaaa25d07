package slowpath

import (
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// RegKey returns k as the registration store and regstore.Verify take it,
// its sending settings (Validate checked them) included.
func (k AuthKey) RegKey() regstore.Key {
	rk := regstore.Key{KeyID: k.KeyID, Alg: k.Alg, Secret: []byte(k.Secret)}
	switch k.HMACLength {
	case HMACLengthFull:
		rk.Length = regstore.LengthFull
	case HMACLengthTruncated:
		rk.Length = regstore.LengthTruncated
	}
	switch k.Coverage {
	case CoverageMessage:
		rk.Coverage = regstore.CoverageMessage
	case CoverageRecords:
		rk.Coverage = regstore.CoverageRecords
	}
	if k.Layout == LayoutLegacy {
		rk.Layout = regstore.LayoutLegacy
	}
	return rk
}

// Auth returns the authentication field a message k signs on its own
// initiative carries (a Map-Register, an unsolicited Map-Notify): sized and
// covering as k's settings say, full length and whole message by default.
func (k AuthKey) Auth() wire.Auth {
	rk := k.RegKey()
	return wire.NewAuthVariant(k.KeyID, rk.Variant(nil))
}
