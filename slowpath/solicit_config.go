package slowpath

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// SolicitConfig configures ITR-to-ITR map-cache solicitation (LISP-MSX
// Map-Solicit-Request / Map-Solicit-Response, docs/solicit.md): an ITR
// answers the configured peer ITRs of its domain with a copy of its
// map-cache, and, with OnStart, copies theirs when it starts with an empty
// one. Its YAML section is itr.solicit.
type SolicitConfig struct {
	// Peers are the peer ITRs, each with the key the two share. Only they
	// are answered, and only their answers are installed.
	Peers []SolicitPeer `mapstructure:"peers"`
	// OnStart asks every peer for its map-cache when the ITR starts.
	OnStart bool `mapstructure:"on_start"`
	// Scope limits what is asked for to these prefixes (mask length 0: a
	// whole instance-ID); empty asks for the whole map-cache.
	Scope []EIDPrefix `mapstructure:"scope"`
	// HoldMisses is how long, at start, a miss waits for the solicitation
	// to finish before it is resolved by Map-Request; 0 means 2 s. A miss
	// the solicitation answered sends no Map-Request at all.
	HoldMisses time.Duration `mapstructure:"hold_misses"`
	// PageRecords bounds the records of one Map-Solicit-Response page (the
	// requester's Max Records, and the responder's own bound); 0 means 64,
	// at most 255.
	PageRecords int `mapstructure:"page_records"`
	// PageBytes bounds the encoded size of one page; 0 means 1400 (one
	// unfragmented datagram on an Ethernet underlay).
	PageBytes int `mapstructure:"page_bytes"`
	// RetransmitInterval is the first wait for a page before the request
	// is sent again, doubled on each try; 0 means 500 ms.
	RetransmitInterval time.Duration `mapstructure:"retransmit_interval"`
	// MaxTries bounds the sends of one page request; 0 means 4.
	MaxTries int `mapstructure:"max_tries"`
	// MinInterval is how often one peer may start a new solicitation of
	// this ITR (a first page); more frequent ones are refused and counted.
	// 0 means 1 s.
	MinInterval time.Duration `mapstructure:"min_interval"`
	// SessionTimeout forgets an answering session its peer stopped
	// paging through; 0 means 30 s.
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
	// MaxEntries bounds the entries one answering session copies and one
	// solicitation installs; 0 means 1000000.
	MaxEntries int `mapstructure:"max_entries"`
}

// SolicitPeer is one peer ITR.
type SolicitPeer struct {
	// Addr is the peer's control address (port 4342 when not given).
	Addr netip.AddrPort `mapstructure:"addr"`
	// Key authenticates every solicitation message to and from the peer
	// (RFC 9301 §5.6 field, docs/solicit.md).
	Key AuthKey `mapstructure:"key"`
}

// MaxSolicitPeers bounds SolicitConfig.Peers, and with it the answering
// sessions (one per peer).
const MaxSolicitPeers = 64

// Enabled reports whether solicitation is configured.
func (s *SolicitConfig) Enabled() bool { return s != nil && len(s.Peers) > 0 }

// Validate checks the section configured under path (e.g. "itr.solicit").
func (s *SolicitConfig) Validate(path string) error {
	if len(s.Peers) == 0 || len(s.Peers) > MaxSolicitPeers {
		return fmt.Errorf("%s.peers: %d peers (1..%d)", path, len(s.Peers), MaxSolicitPeers)
	}
	seen := map[netip.Addr]bool{}
	for i := range s.Peers {
		p := &s.Peers[i]
		at := fmt.Sprintf("%s.peers[%d]", path, i)
		if !p.Addr.IsValid() || p.Addr.Addr().IsUnspecified() {
			return fmt.Errorf("%s.addr: invalid address", at)
		}
		a := p.Addr.Addr().Unmap()
		if seen[a] {
			return fmt.Errorf("%s.addr: %v listed twice", at, a)
		}
		seen[a] = true
		if err := p.Key.Validate(at + ".key"); err != nil {
			return err
		}
		if p.Key.Alg == wire.AuthHMACSHA256128HKDF {
			// RFC 9301 §5.4 defines the per-message key for Map-Register,
			// Map-Notify and Map-Notify-Ack only.
			return fmt.Errorf("%s.key.alg: hmac-sha256-128-hkdf has no per-message key for solicitation messages (use hmac-sha256-128 or hmac-sha1-96)", at)
		}
	}
	for i, e := range s.Scope {
		if !e.Prefix.IsValid() {
			return fmt.Errorf("%s.scope[%d].eid: invalid prefix", path, i)
		}
	}
	if len(s.Scope) > 255 {
		return fmt.Errorf("%s.scope: %d prefixes (at most 255)", path, len(s.Scope))
	}
	if s.PageRecords < 0 || s.PageRecords > 255 {
		return fmt.Errorf("%s.page_records: %d (0..255)", path, s.PageRecords)
	}
	if s.PageBytes != 0 && (s.PageBytes < 256 || s.PageBytes > 65000) {
		return fmt.Errorf("%s.page_bytes: %d (256..65000)", path, s.PageBytes)
	}
	if s.HoldMisses < 0 || s.RetransmitInterval < 0 || s.MaxTries < 0 || s.MinInterval < 0 ||
		s.SessionTimeout < 0 || s.MaxEntries < 0 {
		return fmt.Errorf("%s: negative interval or count", path)
	}
	return nil
}

// WithDefaults returns a copy of s with zero values replaced by defaults.
func (s SolicitConfig) WithDefaults() SolicitConfig {
	if s.HoldMisses == 0 {
		s.HoldMisses = 2 * time.Second
	}
	if s.PageRecords == 0 {
		s.PageRecords = 64
	}
	if s.PageBytes == 0 {
		s.PageBytes = 1400
	}
	if s.RetransmitInterval == 0 {
		s.RetransmitInterval = 500 * time.Millisecond
	}
	if s.MaxTries == 0 {
		s.MaxTries = 4
	}
	if s.MinInterval == 0 {
		s.MinInterval = time.Second
	}
	if s.SessionTimeout == 0 {
		s.SessionTimeout = 30 * time.Second
	}
	if s.MaxEntries == 0 {
		s.MaxEntries = 1000000
	}
	s.Peers = append([]SolicitPeer(nil), s.Peers...)
	for i := range s.Peers {
		p := &s.Peers[i]
		p.Addr = netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port())
		if p.Addr.Port() == 0 {
			p.Addr = netip.AddrPortFrom(p.Addr.Addr(), 4342)
		}
	}
	return s
}

// Peer returns the configured peer with address a, or nil.
func (s *SolicitConfig) Peer(a netip.Addr) *SolicitPeer {
	a = a.Unmap()
	for i := range s.Peers {
		if s.Peers[i].Addr.Addr() == a {
			return &s.Peers[i]
		}
	}
	return nil
}
