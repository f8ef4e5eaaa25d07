package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// The configuration file's shape. Addresses, prefixes and durations are
// strings here and parsed afterwards, so that every error names its key.

type fileConfig struct {
	Name         string          `mapstructure:"name"`
	Roles        []string        `mapstructure:"roles"`
	RLOCs        []string        `mapstructure:"rlocs"`
	Interfaces   []fileInterface `mapstructure:"interfaces"`
	CPUs         []int           `mapstructure:"cpus"`
	Control      fileControl     `mapstructure:"control"`
	Database     []fileMapping   `mapstructure:"database"`
	MapServers   []fileMSPeer    `mapstructure:"map_servers"`
	MapResolvers []string        `mapstructure:"map_resolvers"`
	PETRs        []string        `mapstructure:"petrs"`
	Advertise    []string        `mapstructure:"advertise"`
	MapCache     []fileMapping   `mapstructure:"map_cache"`
	Sites        []fileSite      `mapstructure:"sites"`
	ETR          fileETR         `mapstructure:"etr"`
	ITR          fileITR         `mapstructure:"itr"`
	MapServer    fileMapServer   `mapstructure:"map_server"`
	XDP          fileXDP         `mapstructure:"xdp"`
	MapResolver  fileMapResolver `mapstructure:"map_resolver"`
	Hold         fileHold        `mapstructure:"hold"`
	Multicast    fileMulticast   `mapstructure:"multicast"`
	Cache        struct {
		MaxEntries  int `mapstructure:"max_entries"`
		MaxNegative int `mapstructure:"max_negative"`
	} `mapstructure:"cache"`
	Nonce bool `mapstructure:"nonce"`
	Mgmt  struct {
		Socket string `mapstructure:"socket"`
	} `mapstructure:"mgmt"`
	Metrics struct {
		Listen string `mapstructure:"listen"`
	} `mapstructure:"metrics"`
	Log struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`
}

type fileInterface struct {
	Name    string `mapstructure:"name"`
	Side    string `mapstructure:"side"`
	IID     uint32 `mapstructure:"iid"`
	Queues  int    `mapstructure:"queues"`
	XDPMode string `mapstructure:"xdp_mode"`
	MTU     int    `mapstructure:"mtu"`
	Glean   bool   `mapstructure:"glean"`
}

type fileXDP struct {
	RingSize int  `mapstructure:"ring_size"`
	Frames   int  `mapstructure:"frames"`
	BusyPoll bool `mapstructure:"busy_poll"`
}

type fileControl struct {
	Listen    []string `mapstructure:"listen"`
	RateLimit struct {
		PerSecond  float64 `mapstructure:"per_second"`
		Burst      int     `mapstructure:"burst"`
		MaxSources int     `mapstructure:"max_sources"`
	} `mapstructure:"rate_limit"`
}

type fileRLOC struct {
	Addr     string `mapstructure:"addr"`
	Priority *int   `mapstructure:"priority"`
	Weight   *int   `mapstructure:"weight"`
}

type fileMapping struct {
	EID    string     `mapstructure:"eid"`
	IID    uint32     `mapstructure:"iid"`
	TTL    string     `mapstructure:"ttl"`
	RLOCs  []fileRLOC `mapstructure:"rlocs"`
	Action string     `mapstructure:"action"`
}

type fileKey struct {
	ID     int    `mapstructure:"id"`
	Alg    string `mapstructure:"alg"`
	Secret string `mapstructure:"secret"`
}

type fileMSPeer struct {
	Addr string  `mapstructure:"addr"`
	Key  fileKey `mapstructure:"key"`
}

type fileSitePrefix struct {
	EID                 string `mapstructure:"eid"`
	IID                 uint32 `mapstructure:"iid"`
	AcceptMoreSpecifics bool   `mapstructure:"accept_more_specifics"`
}

type fileSite struct {
	Name         string           `mapstructure:"name"`
	Keys         []fileKey        `mapstructure:"keys"`
	Prefixes     []fileSitePrefix `mapstructure:"prefixes"`
	ProxyReply   bool             `mapstructure:"proxy_reply"`
	RequireXTRID bool             `mapstructure:"require_xtr_id"`
}

type fileETR struct {
	RegisterInterval string `mapstructure:"register_interval"`
	ProxyReply       bool   `mapstructure:"proxy_reply"`
	DeregisterOnStop bool   `mapstructure:"deregister_on_stop"`
	SiteID           uint64 `mapstructure:"site_id"`
}

type fileITR struct {
	ProbeInterval      string `mapstructure:"probe_interval"`
	ProbeMisses        int    `mapstructure:"probe_misses"`
	RetransmitInterval string `mapstructure:"retransmit_interval"`
	MaxTries           int    `mapstructure:"max_tries"`
}

type fileMapServer struct {
	RegistrationTimeout string             `mapstructure:"registration_timeout"`
	GroupMappings       []fileGroupMapping `mapstructure:"group_mappings"`
}

// fileGroupMapping is one overlay group range and the underlay groups
// ("G" or "S,G") and unicast RLOCs it maps to.
type fileGroupMapping struct {
	IID     uint32   `mapstructure:"iid"`
	EID     string   `mapstructure:"eid"`
	Groups  []string `mapstructure:"groups"`
	Unicast []string `mapstructure:"unicast"`
}

type fileRemoteMS struct {
	Addr     string           `mapstructure:"addr"`
	Prefixes []fileSitePrefix `mapstructure:"prefixes"`
}

type fileMapResolver struct {
	NegativeTTL string           `mapstructure:"negative_ttl"`
	Aggregates  []fileSitePrefix `mapstructure:"aggregates"`
	MapServers  []fileRemoteMS   `mapstructure:"map_servers"`
}

type fileHold struct {
	PerEID        int    `mapstructure:"per_eid"`
	MaxPackets    int    `mapstructure:"max_packets"`
	MaxEIDs       int    `mapstructure:"max_eids"`
	HoldTime      string `mapstructure:"hold_time"`
	RetryInterval string `mapstructure:"retry_interval"`
}

type fileMulticast struct {
	Enabled             bool    `mapstructure:"enabled"`
	Key                 fileKey `mapstructure:"key"`
	RLOC                string  `mapstructure:"rloc"`
	Receivers           bool    `mapstructure:"receivers"`
	RegisterInterval    string  `mapstructure:"register_interval"`
	RetryInterval       string  `mapstructure:"retry_interval"`
	Retries             int     `mapstructure:"retries"`
	MaxRLE              int     `mapstructure:"max_rle"`
	Level               uint8   `mapstructure:"level"`
	MembershipInterval  string  `mapstructure:"membership_interval"`
	LastMemberQueryTime string  `mapstructure:"last_member_query_time"`
	FastLeave           bool    `mapstructure:"fast_leave"`
	QueryInterval       string  `mapstructure:"query_interval"`
	ProbeInterval       string  `mapstructure:"probe_interval"`
	ProbeMisses         int     `mapstructure:"probe_misses"`
	JoinHold            string  `mapstructure:"join_hold"`
	SubscribeWindow     string  `mapstructure:"subscribe_window"`
	Underlay            *struct {
		Method        string `mapstructure:"method"`
		Range         string `mapstructure:"range"`
		LookupIID     uint32 `mapstructure:"lookup_iid"`
		RegisterURLOC bool   `mapstructure:"register_urloc"`
		SuppressHold  string `mapstructure:"suppress_hold"`
		Interface     string `mapstructure:"interface"`
	} `mapstructure:"underlay"`
	Trees []struct {
		IID    uint32 `mapstructure:"iid"`
		Source string `mapstructure:"source"`
		Group  string `mapstructure:"group"`
		Level  uint8  `mapstructure:"level"`
	} `mapstructure:"trees"`
}

// envKeys are the scalar keys that RLOC_* environment variables override
// even when the file does not set them (RLOC_MGMT_SOCKET, RLOC_LOG_LEVEL...).
var envKeys = []string{"name", "nonce", "mgmt.socket", "metrics.listen", "log.level", "log.format",
	"etr.register_interval", "etr.deregister_on_stop", "itr.probe_interval", "map_server.registration_timeout"}

// options are the settings that are not part of router.Config.
type options struct {
	logLevel  slog.Level
	logFormat string
}

// newViper reads file, RLOC_* environment variables and the flags set in fs.
func newViper(file string, fs *pflag.FlagSet) (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	v.SetEnvPrefix("RLOC")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, k := range envKeys {
		_ = v.BindEnv(k)
	}
	if fs != nil {
		for flag, key := range map[string]string{"mgmt-socket": "mgmt.socket", "metrics": "metrics.listen",
			"log-level": "log.level", "log-format": "log.format", "name": "name"} {
			if f := fs.Lookup(flag); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// loadConfig reads and checks a configuration.
func loadConfig(file string, fs *pflag.FlagSet) (router.Config, options, error) {
	v, err := newViper(file, fs)
	if err != nil {
		return router.Config{}, options{}, err
	}
	var fc fileConfig
	if err := v.UnmarshalExact(&fc); err != nil {
		return router.Config{}, options{}, fmt.Errorf("%s: %w", file, friendly(err))
	}
	cfg, opts, err := fc.convert()
	if err != nil {
		return cfg, opts, fmt.Errorf("%s: %w", file, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, opts, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, opts, nil
}

// friendly shortens mapstructure's messages ("* 'foo' has invalid keys").
func friendly(err error) error {
	s := err.Error()
	s = strings.ReplaceAll(s, "decoding failed due to the following error(s):\n\n", "")
	s = strings.ReplaceAll(s, "has invalid keys", "has unknown keys")
	return errors.New(strings.TrimSpace(s))
}

func parseAddr(key, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("%s: %q is not an IP address", key, s)
	}
	return a.Unmap(), nil
}

// parseAddrPort accepts "ADDR" (port 4342) or "ADDR:PORT" / "[V6]:PORT".
func parseAddrPort(key, s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), wire.ControlPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%s: %q is not an address or address:port", key, s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func parsePrefix(key, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.PrefixFrom(a, a.BitLen()), nil
		}
		return p, fmt.Errorf("%s: %q is not a prefix", key, s)
	}
	if p != p.Masked() {
		return p, fmt.Errorf("%s: %v has host bits set (want %v)", key, p, p.Masked())
	}
	return p, nil
}

func parseDuration(key, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %q is not a duration (e.g. 30s, 5m)", key, s)
	}
	return d, nil
}

func parseKey(key string, k fileKey) (slowpath.AuthKey, error) {
	out := slowpath.AuthKey{Secret: k.Secret}
	if k.ID < 0 || k.ID > 255 {
		return out, fmt.Errorf("%s.id: %d (0..255)", key, k.ID)
	}
	out.KeyID = uint8(k.ID)
	switch strings.ToLower(k.Alg) {
	case "", "hmac-sha256-128", "sha256", "hmac-sha-256-128":
		out.Alg = wire.AuthHMACSHA256128
	case "hmac-sha1-96", "sha1", "hmac-sha-1-96":
		out.Alg = wire.AuthHMACSHA1_96
	default:
		return out, fmt.Errorf("%s.alg: %q (want hmac-sha256-128 or hmac-sha1-96)", key, k.Alg)
	}
	if k.Secret == "" {
		return out, fmt.Errorf("%s.secret: empty", key)
	}
	return out, nil
}

func parseAction(key, s string) (wire.Action, error) {
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
	return 0, fmt.Errorf("%s: unknown action %q", key, s)
}

func prio(key string, p *int, def int) (uint8, error) {
	if p == nil {
		return uint8(def), nil
	}
	if *p < 0 || *p > 255 {
		return 0, fmt.Errorf("%s: %d (0..255)", key, *p)
	}
	return uint8(*p), nil
}

func parseRLOCs(key string, rs []fileRLOC) ([]slowpath.RLOCConfig, error) {
	var out []slowpath.RLOCConfig
	for i, r := range rs {
		k := fmt.Sprintf("%s[%d]", key, i)
		a, err := parseAddr(k+".addr", r.Addr)
		if err != nil {
			return nil, err
		}
		p, err := prio(k+".priority", r.Priority, 1)
		if err != nil {
			return nil, err
		}
		w, err := prio(k+".weight", r.Weight, 100)
		if err != nil {
			return nil, err
		}
		out = append(out, slowpath.RLOCConfig{Addr: a, Priority: p, Weight: w})
	}
	return out, nil
}

func parseSitePrefixes(key string, ps []fileSitePrefix) ([]slowpath.SitePrefix, error) {
	var out []slowpath.SitePrefix
	for i, p := range ps {
		k := fmt.Sprintf("%s[%d]", key, i)
		pf, err := parsePrefix(k+".eid", p.EID)
		if err != nil {
			return nil, err
		}
		out = append(out, slowpath.SitePrefix{EIDPrefix: slowpath.EIDPrefix{IID: p.IID, Prefix: pf},
			AcceptMoreSpecifics: p.AcceptMoreSpecifics})
	}
	return out, nil
}

// parseGroupMappings reads map_server.group_mappings.
func parseGroupMappings(gms []fileGroupMapping) ([]replicate.GroupMapping, error) {
	var out []replicate.GroupMapping
	for i, g := range gms {
		k := fmt.Sprintf("map_server.group_mappings[%d]", i)
		p, err := parsePrefix(k+".eid", g.EID)
		if err != nil {
			return nil, err
		}
		m := replicate.GroupMapping{IID: g.IID, GEID: p}
		for j, s := range g.Groups {
			var ug replicate.UnderlayGroup
			src, grp, ssm := strings.Cut(s, ",")
			if !ssm {
				grp = src
			} else if ug.Source, err = netip.ParseAddr(strings.TrimSpace(src)); err != nil {
				return nil, fmt.Errorf("%s.groups[%d]: source of %q: %v", k, j, s, err)
			}
			if ug.Group, err = netip.ParseAddr(strings.TrimSpace(grp)); err != nil {
				return nil, fmt.Errorf("%s.groups[%d]: %q: %v (want \"G\" or \"S,G\")", k, j, s, err)
			}
			m.Groups = append(m.Groups, ug)
		}
		for j, s := range g.Unicast {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s.unicast[%d]: %q: %v", k, j, s, err)
			}
			m.Unicast = append(m.Unicast, a)
		}
		if _, err := m.Record(1, 1, 100); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// convert turns the file's shape into a router.Config.
func (fc *fileConfig) convert() (router.Config, options, error) {
	var c router.Config
	var o options
	c.Name, c.Nonce, c.MgmtSocket, c.MetricsAddr = fc.Name, fc.Nonce, fc.Mgmt.Socket, fc.Metrics.Listen
	c.Cache, c.CPUs = router.CacheOptions{MaxEntries: fc.Cache.MaxEntries, MaxNegative: fc.Cache.MaxNegative}, fc.CPUs
	c.XDP = router.XDPOptions{RingSize: fc.XDP.RingSize, Frames: fc.XDP.Frames, BusyPoll: fc.XDP.BusyPoll}
	switch strings.ToLower(fc.Log.Level) {
	case "", "info":
		o.logLevel = slog.LevelInfo
	case "debug":
		o.logLevel = slog.LevelDebug
	case "warn", "warning":
		o.logLevel = slog.LevelWarn
	case "error":
		o.logLevel = slog.LevelError
	default:
		return c, o, fmt.Errorf("log.level: %q (want debug, info, warn or error)", fc.Log.Level)
	}
	switch fc.Log.Format {
	case "", "text", "json":
		o.logFormat = fc.Log.Format
	default:
		return c, o, fmt.Errorf("log.format: %q (want text or json)", fc.Log.Format)
	}
	for i, r := range fc.Roles {
		switch strings.ToLower(r) {
		case "itr":
			c.Roles.ITR = true
		case "etr":
			c.Roles.ETR = true
		case "xtr":
			c.Roles.ITR, c.Roles.ETR = true, true
		case "pitr":
			c.Roles.PITR = true
		case "petr":
			c.Roles.PETR = true
		case "pxtr":
			c.Roles.PITR, c.Roles.PETR = true, true
		case "rtr":
			c.Roles.RTR = true
		case "map-server", "ms":
			c.Roles.MapServer = true
		case "map-resolver", "mr":
			c.Roles.MapResolver = true
		default:
			return c, o, fmt.Errorf("roles[%d]: unknown role %q (itr, etr, xtr, pitr, petr, pxtr, rtr, map-server, map-resolver)", i, r)
		}
	}
	for i, s := range fc.RLOCs {
		a, err := parseAddr(fmt.Sprintf("rlocs[%d]", i), s)
		if err != nil {
			return c, o, err
		}
		c.RLOCs = append(c.RLOCs, a)
	}
	for _, fi := range fc.Interfaces {
		c.Interfaces = append(c.Interfaces, router.Interface{Name: fi.Name, Side: router.Side(fi.Side), IID: fi.IID,
			Queues: fi.Queues, XDPMode: router.XDPMode(fi.XDPMode), MTU: fi.MTU, Glean: fi.Glean})
	}
	for i, s := range fc.Control.Listen {
		a, err := parseAddrPort(fmt.Sprintf("control.listen[%d]", i), s)
		if err != nil {
			return c, o, err
		}
		c.Listen = append(c.Listen, a)
	}
	rl := fc.Control.RateLimit
	c.RateLimit = slowpath.RateLimitConfig{PerSecond: rl.PerSecond, Burst: rl.Burst, MaxSources: rl.MaxSources}
	for i, m := range fc.Database {
		k := fmt.Sprintf("database[%d]", i)
		p, err := parsePrefix(k+".eid", m.EID)
		if err != nil {
			return c, o, err
		}
		ttl, err := parseDuration(k+".ttl", m.TTL)
		if err != nil {
			return c, o, err
		}
		if m.Action != "" {
			return c, o, fmt.Errorf("%s.action: database mappings have no action", k)
		}
		rl, err := parseRLOCs(k+".rlocs", m.RLOCs)
		if err != nil {
			return c, o, err
		}
		if len(rl) == 0 {
			return c, o, fmt.Errorf("%s.rlocs: at least one RLOC", k)
		}
		c.Database = append(c.Database, slowpath.Mapping{EIDPrefix: slowpath.EIDPrefix{IID: m.IID, Prefix: p}, RLOCs: rl, TTL: ttl})
	}
	for i, m := range fc.MapCache {
		k := fmt.Sprintf("map_cache[%d]", i)
		p, err := parsePrefix(k+".eid", m.EID)
		if err != nil {
			return c, o, err
		}
		if m.TTL != "" {
			return c, o, fmt.Errorf("%s.ttl: static entries never expire", k)
		}
		act, err := parseAction(k+".action", m.Action)
		if err != nil {
			return c, o, err
		}
		rl, err := parseRLOCs(k+".rlocs", m.RLOCs)
		if err != nil {
			return c, o, err
		}
		sm := fastpath.StaticMapping{IID: m.IID, Prefix: p, Action: act}
		for _, r := range rl {
			sm.RLOCs = append(sm.RLOCs, fastpath.StaticRLOC{Addr: r.Addr, Priority: r.Priority, Weight: r.Weight})
		}
		c.Static = append(c.Static, sm)
	}
	for i, p := range fc.MapServers {
		k := fmt.Sprintf("map_servers[%d]", i)
		a, err := parseAddrPort(k+".addr", p.Addr)
		if err != nil {
			return c, o, err
		}
		key, err := parseKey(k+".key", p.Key)
		if err != nil {
			return c, o, err
		}
		c.MapServers = append(c.MapServers, slowpath.MapServerPeer{Addr: a, Key: key})
	}
	for i, s := range fc.MapResolvers {
		a, err := parseAddrPort(fmt.Sprintf("map_resolvers[%d]", i), s)
		if err != nil {
			return c, o, err
		}
		c.MapResolvers = append(c.MapResolvers, a)
	}
	for i, s := range fc.Advertise {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return c, o, fmt.Errorf("advertise[%d]: %q is not a prefix", i, s)
		}
		c.Advertise = append(c.Advertise, p)
	}
	for i, s := range fc.PETRs {
		a, err := parseAddr(fmt.Sprintf("petrs[%d]", i), s)
		if err != nil {
			return c, o, err
		}
		c.PETRs = append(c.PETRs, a)
	}
	for i, s := range fc.Sites {
		k := fmt.Sprintf("sites[%d]", i)
		sc := slowpath.SiteConfig{Name: s.Name, ProxyReply: s.ProxyReply, RequireXTRID: s.RequireXTRID}
		for j, fk := range s.Keys {
			key, err := parseKey(fmt.Sprintf("%s.keys[%d]", k, j), fk)
			if err != nil {
				return c, o, err
			}
			sc.Keys = append(sc.Keys, key)
		}
		ps, err := parseSitePrefixes(k+".prefixes", s.Prefixes)
		if err != nil {
			return c, o, err
		}
		sc.Prefixes = ps
		c.Sites = append(c.Sites, sc)
	}
	var err error
	if c.ETR.RegisterInterval, err = parseDuration("etr.register_interval", fc.ETR.RegisterInterval); err != nil {
		return c, o, err
	}
	c.ETR.ProxyReply, c.ETR.DeregisterOnStop, c.ETR.SiteID = fc.ETR.ProxyReply, fc.ETR.DeregisterOnStop, fc.ETR.SiteID
	if c.ITR.ProbeInterval, err = parseDuration("itr.probe_interval", fc.ITR.ProbeInterval); err != nil {
		return c, o, err
	}
	if c.ITR.RetransmitInterval, err = parseDuration("itr.retransmit_interval", fc.ITR.RetransmitInterval); err != nil {
		return c, o, err
	}
	c.ITR.ProbeMisses, c.ITR.MaxTries = fc.ITR.ProbeMisses, fc.ITR.MaxTries
	if c.MapServer.RegistrationTimeout, err = parseDuration("map_server.registration_timeout", fc.MapServer.RegistrationTimeout); err != nil {
		return c, o, err
	}
	if c.MapServer.GroupMappings, err = parseGroupMappings(fc.MapServer.GroupMappings); err != nil {
		return c, o, err
	}
	if c.MapResolver.NegativeTTL, err = parseDuration("map_resolver.negative_ttl", fc.MapResolver.NegativeTTL); err != nil {
		return c, o, err
	}
	aggs, err := parseSitePrefixes("map_resolver.aggregates", fc.MapResolver.Aggregates)
	if err != nil {
		return c, o, err
	}
	for _, a := range aggs {
		c.MapResolver.Aggregates = append(c.MapResolver.Aggregates, a.EIDPrefix)
	}
	for i, m := range fc.MapResolver.MapServers {
		k := fmt.Sprintf("map_resolver.map_servers[%d]", i)
		a, err := parseAddrPort(k+".addr", m.Addr)
		if err != nil {
			return c, o, err
		}
		ps, err := parseSitePrefixes(k+".prefixes", m.Prefixes)
		if err != nil {
			return c, o, err
		}
		rm := slowpath.RemoteMapServer{Addr: a}
		for _, p := range ps {
			rm.Prefixes = append(rm.Prefixes, p.EIDPrefix)
		}
		c.MapResolver.MapServers = append(c.MapResolver.MapServers, rm)
	}
	if c.Multicast, err = fc.Multicast.convert(); err != nil {
		return c, o, err
	}
	h := fc.Hold
	c.Hold = fastpath.HoldConfig{PerEID: h.PerEID, MaxPackets: h.MaxPackets, MaxEIDs: h.MaxEIDs}
	if c.Hold.HoldTime, err = parseDuration("hold.hold_time", h.HoldTime); err != nil {
		return c, o, err
	}
	if c.Hold.RetryInterval, err = parseDuration("hold.retry_interval", h.RetryInterval); err != nil {
		return c, o, err
	}
	if h.PerEID < 0 || h.MaxPackets < 0 || h.MaxEIDs < 0 {
		return c, o, errors.New("hold: negative bound")
	}
	return c, o, nil
}

// convert parses the multicast section (keys under multicast.).
func (m *fileMulticast) convert() (router.MulticastOptions, error) {
	o := router.MulticastOptions{Enabled: m.Enabled, Receivers: m.Receivers, Retries: m.Retries, MaxRLE: m.MaxRLE,
		Level: m.Level, FastLeave: m.FastLeave, ProbeMisses: m.ProbeMisses}
	var err error
	if m.Key.Secret != "" {
		if o.Key, err = parseKey("multicast.key", m.Key); err != nil {
			return o, err
		}
	}
	if m.RLOC != "" {
		if o.RLOC, err = parseAddr("multicast.rloc", m.RLOC); err != nil {
			return o, err
		}
	}
	for _, d := range []struct {
		key string
		s   string
		out *time.Duration
	}{
		{"multicast.register_interval", m.RegisterInterval, &o.RegisterInterval},
		{"multicast.retry_interval", m.RetryInterval, &o.RetryInterval},
		{"multicast.membership_interval", m.MembershipInterval, &o.MembershipInterval},
		{"multicast.last_member_query_time", m.LastMemberQueryTime, &o.LastMemberQueryTime},
		{"multicast.query_interval", m.QueryInterval, &o.QueryInterval},
		{"multicast.probe_interval", m.ProbeInterval, &o.ProbeInterval},
		{"multicast.join_hold", m.JoinHold, &o.JoinHold},
		{"multicast.subscribe_window", m.SubscribeWindow, &o.SubscribeWindow},
	} {
		if *d.out, err = parseDuration(d.key, d.s); err != nil {
			return o, err
		}
	}
	if u := m.Underlay; u != nil {
		uo := &router.UnderlayOptions{Method: u.Method, LookupIID: u.LookupIID, RegisterURLOC: u.RegisterURLOC, Interface: u.Interface}
		if uo.SuppressHold, err = parseDuration("multicast.underlay.suppress_hold", u.SuppressHold); err != nil {
			return o, err
		}
		if u.Range != "" {
			if uo.Range, err = parsePrefix("multicast.underlay.range", u.Range); err != nil {
				return o, err
			}
		}
		o.Underlay = uo
	}
	for i, t := range m.Trees {
		k := fmt.Sprintf("multicast.trees[%d]", i)
		g, err := parsePrefix(k+".group", t.Group)
		if err != nil {
			return o, err
		}
		var s netip.Prefix
		if t.Source != "" && t.Source != "*" {
			if s, err = parsePrefix(k+".source", t.Source); err != nil {
				return o, err
			}
		}
		o.Trees = append(o.Trees, slowpath.RTRGroup{IID: t.IID, Source: s, Group: g, Level: t.Level})
	}
	return o, nil
}
