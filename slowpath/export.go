package slowpath

import "github.com/rloc-router/rloc/slowpath/regstore"

// Exported entry points to the configuration's defaults and checks
// (config.go, mcast_config.go), for the assembly and the role packages.

// WithDefaults returns a copy of c with zero values replaced by defaults,
// as New applies them.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// WithDefaults returns a copy of c with zero values replaced by defaults,
// some taken from top (the ETR's Map-Servers and register interval, the
// ITR's Map-Resolvers).
func (c MulticastConfig) WithDefaults(top *Config) *MulticastConfig { return c.withDefaults(top) }

// RegKey returns k as the registration store and regstore.Verify take it.
func (k AuthKey) RegKey() regstore.Key {
	return regstore.Key{KeyID: k.KeyID, Alg: k.Alg, Secret: []byte(k.Secret)}
}
