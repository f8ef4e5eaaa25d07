package router

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath"
)

// LispSecOptions is the ITR's side of LISP-SEC (RFC 9303, docs/lisp-sec.md).
type LispSecOptions struct {
	// Mode is off (default), on (ask for LISP-SEC, refuse replies whose
	// LISP-SEC data does not verify, accept replies without it) or
	// required (also refuse replies without it).
	Mode string `mapstructure:"mode"`
	// Key wraps the one-time key of each Map-Request for the Map-Resolvers
	// and Map-Servers (their map_server.lisp_sec_key); empty sends it
	// unwrapped, for a path protected otherwise.
	Key string `mapstructure:"key"`
	// IIDs are the instance-IDs whose lookups use LISP-SEC; empty means all.
	IIDs []uint32 `mapstructure:"iids"`
	// MapResolvers, when set, are the map_resolvers LISP-SEC lookups go to
	// (those that support it); empty means all of them.
	MapResolvers []netip.AddrPort `mapstructure:"map_resolvers"`
}

// lispSecMode reads itr.lisp_sec.mode.
func lispSecMode(s string) (slowpath.LispSecMode, error) {
	switch s {
	case "", "off":
		return slowpath.LispSecOff, nil
	case "on":
		return slowpath.LispSecOn, nil
	case "required":
		return slowpath.LispSecRequired, nil
	}
	return 0, fmt.Errorf("itr.lisp_sec.mode: %q (off, on or required)", s)
}

// lispSecConfig is the ITR's LISP-SEC configuration, nil when off.
func (c *Config) lispSecConfig() *slowpath.LispSecConfig {
	o := &c.ITR.LispSec
	mode, err := lispSecMode(o.Mode)
	if err != nil || mode == slowpath.LispSecOff {
		return nil
	}
	return &slowpath.LispSecConfig{Mode: mode, Key: o.Key, IIDs: o.IIDs, MapResolvers: o.MapResolvers}
}

// validateLispSec checks itr.lisp_sec.
func (c *Config) validateLispSec() error {
	o := &c.ITR.LispSec
	mode, err := lispSecMode(o.Mode)
	switch {
	case err != nil:
		return err
	case mode == slowpath.LispSecOff && (o.Key != "" || len(o.IIDs) > 0 || len(o.MapResolvers) > 0):
		return errors.New("itr.lisp_sec: settings without mode on or required")
	case mode != slowpath.LispSecOff && !c.Roles.resolves():
		return errors.New("itr.lisp_sec: only the itr, pitr and rtr roles resolve mappings")
	}
	return nil
}
