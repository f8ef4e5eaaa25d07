package main

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// decodeHook turns the file's values into router.Config's types:
// defaults of absent keys first, then comma-separated environment
// variables into lists, then strings into addresses, prefixes, durations
// and enums, with range checks of sized integers.
func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(defaultsHook, mapstructure.StringToSliceHookFunc(","), valueHook)
}

var (
	typeRLOC        = reflect.TypeFor[slowpath.RLOCConfig]()
	typeStaticRLOC  = reflect.TypeFor[fastpath.StaticRLOC]()
	typeAuthKey     = reflect.TypeFor[slowpath.AuthKey]()
	typeRTRGroup    = reflect.TypeFor[slowpath.RTRGroup]()
	typeAddr        = reflect.TypeFor[netip.Addr]()
	typeAddrPort    = reflect.TypeFor[netip.AddrPort]()
	typePrefix      = reflect.TypeFor[netip.Prefix]()
	typeDuration    = reflect.TypeFor[time.Duration]()
	typeAuthAlg     = reflect.TypeFor[wire.AuthAlg]()
	typeAction      = reflect.TypeFor[wire.Action]()
	typeRoles       = reflect.TypeFor[router.Roles]()
	typeUnderlayGrp = reflect.TypeFor[replicate.UnderlayGroup]()
)

// defaultsHook fills the keys of a section that have a default other than
// the zero value: an RLOC's priority 1 and weight 100, a key's algorithm
// hmac-sha256-128; and a tree's source "*" means (*,G).
func defaultsHook(from, to reflect.Value) (any, error) {
	m, ok := from.Interface().(map[string]any)
	if !ok {
		return from.Interface(), nil
	}
	set := func(k string, v any) {
		if m[k] == nil {
			m = cloneWith(m, k, v)
		}
	}
	switch to.Type() {
	case typeRLOC, typeStaticRLOC:
		set("priority", 1)
		set("weight", 100)
	case typeAuthKey:
		set("alg", "hmac-sha256-128")
	case typeRTRGroup:
		if m["source"] == "*" {
			m = cloneWith(m, "source", "")
		}
	}
	return m, nil
}

// cloneWith returns a copy of m with k set to v.
func cloneWith(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for mk, mv := range m {
		out[mk] = mv
	}
	out[k] = v
	return out
}

// valueHook parses the value from for a field of to's type.
func valueHook(from, to reflect.Value) (any, error) {
	data := from.Interface()
	s, isString := data.(string)
	if !isString {
		s = fmt.Sprint(data)
	}
	switch to.Type() {
	case typeAddr:
		return parseAddr(s)
	case typeAddrPort:
		return parseAddrPort(s)
	case typePrefix:
		return parsePrefix(s)
	case typeDuration:
		return parseDuration(s)
	case typeAuthAlg:
		return parseAlg(s)
	case typeAction:
		return parseAction(s)
	case typeUnderlayGrp:
		return parseUnderlayGroup(s)
	case typeRoles:
		return parseRoles(data)
	}
	if !isString {
		return data, checkRange(from, to)
	}
	return data, nil
}

func parseAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// parseAddrPort accepts "ADDR" (port 4342) or "ADDR:PORT" / "[V6]:PORT".
func parseAddrPort(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), wire.ControlPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%q is not an address or address:port", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// parsePrefix accepts "ADDR/LEN" or "ADDR" (a host prefix). Host bits are
// left for Validate to report.
func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.PrefixFrom(a, a.BitLen()), nil
		}
		return p, fmt.Errorf("%q is not a prefix", s)
	}
	return p, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 5m)", s)
	}
	return d, nil
}

func parseAlg(s string) (wire.AuthAlg, error) {
	switch strings.ToLower(s) {
	case "hmac-sha256-128", "sha256", "hmac-sha-256-128":
		return wire.AuthHMACSHA256128, nil
	case "hmac-sha1-96", "sha1", "hmac-sha-1-96":
		return wire.AuthHMACSHA1_96, nil
	case "hmac-sha256-128-hkdf", "hmac-sha256-128+hkdf-sha256":
		return wire.AuthHMACSHA256128HKDF, nil
	}
	return 0, fmt.Errorf("%q (want hmac-sha256-128, hmac-sha1-96 or hmac-sha256-128-hkdf)", s)
}

func parseAction(s string) (wire.Action, error) {
	switch s {
	case "", "no-action":
		return wire.ActionNoAction, nil
	case "natively-forward", "native-forward":
		return wire.ActionNativelyForward, nil
	case "send-map-request":
		return wire.ActionSendMapRequest, nil
	case "drop":
		return wire.ActionDrop, nil
	case "drop-policy-denied":
		return wire.ActionDropPolicyDenied, nil
	case "drop-auth-failure":
		return wire.ActionDropAuthFailure, nil
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

// parseUnderlayGroup reads "G" or "S,G".
func parseUnderlayGroup(s string) (replicate.UnderlayGroup, error) {
	var ug replicate.UnderlayGroup
	var err error
	src, grp, ssm := strings.Cut(s, ",")
	if !ssm {
		grp = src
	} else if ug.Source, err = netip.ParseAddr(strings.TrimSpace(src)); err != nil {
		return ug, fmt.Errorf("source of %q: %v", s, err)
	}
	if ug.Group, err = netip.ParseAddr(strings.TrimSpace(grp)); err != nil {
		return ug, fmt.Errorf("%q: %v (want \"G\" or \"S,G\")", s, err)
	}
	return ug, nil
}

// indexError is a problem of element i of a list.
type indexError struct {
	i   int
	err error
}

func (e *indexError) Error() string { return fmt.Sprintf("[%d]: %v", e.i, e.err) }
func (e *indexError) Unwrap() error { return e.err }

// parseRoles reads the list of role names.
func parseRoles(data any) (router.Roles, error) {
	var r router.Roles
	var names []string
	switch v := data.(type) {
	case string:
		names = strings.Split(v, ",")
	case []any:
		for _, n := range v {
			names = append(names, fmt.Sprint(n))
		}
	case []string:
		names = v
	default:
		return r, fmt.Errorf("%v is not a list of roles", data)
	}
	for i, n := range names {
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "itr":
			r.ITR = true
		case "etr":
			r.ETR = true
		case "xtr":
			r.ITR, r.ETR = true, true
		case "pitr":
			r.PITR = true
		case "petr":
			r.PETR = true
		case "pxtr":
			r.PITR, r.PETR = true, true
		case "rtr":
			r.RTR = true
		case "map-server", "ms":
			r.MapServer = true
		case "map-resolver", "mr":
			r.MapResolver = true
		case "alt":
			r.ALT = true
		case "ddt-node", "ddt":
			r.DDTNode = true
		default:
			return r, &indexError{i, fmt.Errorf("unknown role %q (itr, etr, xtr, pitr, petr, pxtr, rtr, map-server, map-resolver, ddt-node, alt)", n)}
		}
	}
	return r, nil
}

// checkRange refuses a number that does not fit the sized integer field
// it is decoded into (mapstructure would truncate it).
func checkRange(from, to reflect.Value) error {
	var lo, hi float64
	switch k := to.Kind(); k {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		lo, hi = 0, float64(uint64(1)<<(to.Type().Bits())-1)
		if to.Type().Bits() == 64 {
			hi = math.MaxUint64
		}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := to.Type().Bits()
		lo, hi = -float64(int64(1)<<(bits-1)), float64(int64(1)<<(bits-1)-1)
	default:
		return nil
	}
	var v float64
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v = float64(from.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v = float64(from.Uint())
	case reflect.Float32, reflect.Float64:
		v = from.Float()
	default:
		return nil
	}
	if v < lo || v > hi {
		return fmt.Errorf("%v (%.0f..%.0f)", from.Interface(), lo, hi)
	}
	return nil
}
