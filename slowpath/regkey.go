package slowpath

import "github.com/rloc-router/rloc/slowpath/regstore"

// RegKey returns k as the registration store and regstore.Verify take it.
func (k AuthKey) RegKey() regstore.Key {
	return regstore.Key{KeyID: k.KeyID, Alg: k.Alg, Secret: []byte(k.Secret)}
}
