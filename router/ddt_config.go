package router

import (
	"errors"

	"github.com/rloc-router/rloc/slowpath"
)

// validateDDTResolver checks map_resolver.ddt and map_resolver.ddt_keys
// (their keys named in errors): the bounds, and every key file readable
// as an RSA public key.
func (c *Config) validateDDTResolver() error {
	mr := &c.MapResolver
	if err := mr.DDT.Validate("map_resolver.ddt"); err != nil {
		return err
	}
	if len(mr.DDTRoots) == 0 && (len(mr.DDTKeys) > 0 || mr.DDT != (slowpath.DDTResolverConfig{})) {
		return errors.New("map_resolver.ddt: set, but no map_resolver.ddt_roots to resolve through")
	}
	_, err := slowpath.LoadDDTKeys("map_resolver.ddt_keys", mr.DDTKeys)
	return err
}
