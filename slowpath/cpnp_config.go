package slowpath

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// CPNPConfig configures the negotiation of interconnect agreements with
// CPNP (RFC 8921; docs/cpnp.md): who this mapping system is, whom it
// trusts, what it offers as provider and what it orders as customer. Its
// YAML section is cpnp. An agreed agreement provisions an interconnect
// agreement of the msx role at run time (no msx section needed).
type CPNPConfig struct {
	// Identity is this mapping system's name: the prefix of the customer
	// and provider identifiers it assigns (RFC 8921 order identifiers).
	Identity string `mapstructure:"identity"`
	// PrivateKey is this mapping system's Ed25519 identity key: its 32-byte
	// seed in base64 (or the 64-byte private key). Every CPNP message it
	// sends is signed with it. Alternatively PrivateKeyFile.
	PrivateKey string `mapstructure:"private_key"`
	// PrivateKeyFile is a file holding PrivateKey (read at start-up).
	PrivateKeyFile string `mapstructure:"private_key_file"`
	// Peers is the trust list: the mapping systems whose messages are
	// accepted, known by their public keys (addresses are not known in
	// advance: discovery finds them).
	Peers []CPNPPeer `mapstructure:"peers"`
	// Offer is the provider's policy: what this side grants to an order.
	Offer CPNPOffer `mapstructure:"offer"`
	// Order is what this side asks a provider for.
	Order CPNPOrder `mapstructure:"order"`
	// RetransmitInterval is the first wait before a quotation, accept or
	// withdraw is sent again (it doubles); 0 means 1 s.
	RetransmitInterval time.Duration `mapstructure:"retransmit_interval"`
	// MaxTries bounds the sends of one of them; 0 means 5.
	MaxTries int `mapstructure:"max_tries"`
	// RetryInterval is how long after a failed or declined order the
	// customer orders again from a contact still wanted; 0 means 30 s.
	RetryInterval time.Duration `mapstructure:"retry_interval"`
	// MaxContacts bounds the contacts this side orders from and the peers
	// it keeps state for; 0 means 64.
	MaxContacts int `mapstructure:"max_contacts"`
}

// CPNPPeer is one trusted mapping system.
type CPNPPeer struct {
	// Name is the peer's name in listings, logs and the interconnect
	// agreement it provisions (msx agreement "cpnp-<name>").
	Name string `mapstructure:"name"`
	// PublicKey is its Ed25519 public key, 32 bytes in base64.
	PublicKey string `mapstructure:"public_key"`
	// Contact, when set, is the peer's control address to order from at
	// start-up, without discovery.
	Contact netip.AddrPort `mapstructure:"contact"`
	// Prefixes are what is ordered from Contact (empty: Order.Prefixes).
	Prefixes []EIDPrefix `mapstructure:"prefixes"`
}

// CPNPOffer is the provider's policy.
type CPNPOffer struct {
	// Peers names the trusted peers offered anything (empty: every peer
	// on the trust list).
	Peers []string `mapstructure:"peers"`
	// Prefixes are the EID prefixes this side shares; an order gets the
	// part of what it asks that lies in them. Empty: nothing is offered.
	Prefixes []EIDPrefix `mapstructure:"prefixes"`
	// Primitives this side grants: subscribe, bulk, invocation. Default
	// all three.
	Primitives []string `mapstructure:"primitives"`
	// Rate caps the requests per second granted; 0 means 2000.
	Rate uint32 `mapstructure:"rate"`
	// MaxDuration caps the duration granted; 0: no cap (an order without
	// a duration gets none).
	MaxDuration time.Duration `mapstructure:"max_duration"`
}

// CPNPOrder is what the customer asks for.
type CPNPOrder struct {
	// Prefixes are what is asked of a contact found by discovery when it
	// is not the discovered prefixes themselves (empty: the prefixes BGP
	// discovery learned for that contact).
	Prefixes []EIDPrefix `mapstructure:"prefixes"`
	// Primitives asked for: subscribe, bulk, invocation. Default subscribe
	// and bulk (copy mode) or invocation (invoke mode).
	Primitives []string `mapstructure:"primitives"`
	// Mode is how the agreed interconnect resolves the peer's EIDs: copy
	// (default) or invoke (MSXAgreement.Mode).
	Mode string `mapstructure:"mode"`
	// Rate asked for (requests per second, 0: none stated).
	Rate uint32 `mapstructure:"rate"`
	// Duration asked for (0: until withdrawn).
	Duration time.Duration `mapstructure:"duration"`
	// DeclinePartial declines an offer that grants less than asked
	// (default: a partial offer is accepted).
	DeclinePartial bool `mapstructure:"decline_partial"`
	// Disabled makes this side a provider only: it orders nothing.
	Disabled bool `mapstructure:"disabled"`
}

// WithDefaults returns c with its zero values replaced by the defaults.
func (c CPNPConfig) WithDefaults() CPNPConfig {
	if c.RetransmitInterval == 0 {
		c.RetransmitInterval = time.Second
	}
	if c.MaxTries == 0 {
		c.MaxTries = 5
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = 30 * time.Second
	}
	if c.MaxContacts == 0 {
		c.MaxContacts = 64
	}
	if len(c.Offer.Primitives) == 0 {
		c.Offer.Primitives = []string{MSXSubscribe, MSXBulk, MSXInvocation}
	}
	if c.Offer.Rate == 0 {
		c.Offer.Rate = 2000
	}
	if c.Order.Mode == "" {
		c.Order.Mode = MSXModeCopy
	}
	if len(c.Order.Primitives) == 0 {
		if c.Order.Mode == MSXModeInvoke {
			c.Order.Primitives = []string{MSXInvocation}
		} else {
			c.Order.Primitives = []string{MSXSubscribe, MSXBulk}
		}
	}
	return c
}

// Key returns the identity key of c (PrivateKey, or PrivateKeyFile read).
func (c *CPNPConfig) Key() (ed25519.PrivateKey, error) {
	s, what := c.PrivateKey, "private_key"
	if s == "" && c.PrivateKeyFile != "" {
		b, err := os.ReadFile(c.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("private_key_file: %w", err)
		}
		s, what = strings.TrimSpace(string(b)), "private_key_file"
	}
	if s == "" {
		return nil, fmt.Errorf("private_key: empty (an Ed25519 seed in base64, or private_key_file)")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %w", what, err)
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, fmt.Errorf("%s: %d bytes (want a 32-byte Ed25519 seed or a 64-byte private key)", what, len(b))
}

// PublicKeyBytes decodes the peer's public key.
func (p *CPNPPeer) PublicKeyBytes() ([32]byte, error) {
	b, err := base64.StdEncoding.DecodeString(p.PublicKey)
	if err != nil {
		return [32]byte{}, fmt.Errorf("not base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return [32]byte{}, fmt.Errorf("%d bytes (want a 32-byte Ed25519 public key)", len(b))
	}
	return [32]byte(b), nil
}

// Validate checks the negotiation configured under path; errors name the
// key.
func (c *CPNPConfig) Validate(path string) error {
	if c.Identity == "" || len(c.Identity) > 48 || strings.ContainsAny(c.Identity, " \t\n") {
		return fmt.Errorf("%s.identity: %q (want a name of 1..48 characters without spaces)", path, c.Identity)
	}
	if _, err := c.Key(); err != nil {
		return fmt.Errorf("%s.%w", path, err)
	}
	names := map[string]int{}
	keys := map[[32]byte]int{}
	for i := range c.Peers {
		p := &c.Peers[i]
		f := fmt.Sprintf("%s.peers[%d]", path, i)
		if p.Name == "" {
			return fmt.Errorf("%s.name: empty", f)
		}
		if j, ok := names[p.Name]; ok {
			return fmt.Errorf("%s.name: %q used twice (peers[%d])", f, p.Name, j)
		}
		names[p.Name] = i
		k, err := p.PublicKeyBytes()
		if err != nil {
			return fmt.Errorf("%s.public_key: %w", f, err)
		}
		if j, ok := keys[k]; ok {
			return fmt.Errorf("%s.public_key: the key of peers[%d] too", f, j)
		}
		keys[k] = i
		if p.Contact.IsValid() && p.Contact.Port() == 0 {
			return fmt.Errorf("%s.contact: %v has no port", f, p.Contact)
		}
		if err := validatePrefixes(f+".prefixes", p.Prefixes); err != nil {
			return err
		}
	}
	for i, n := range c.Offer.Peers {
		if _, ok := names[n]; !ok {
			return fmt.Errorf("%s.offer.peers[%d]: %q is not on the trust list (peers)", path, i, n)
		}
	}
	if err := validatePrefixes(path+".offer.prefixes", c.Offer.Prefixes); err != nil {
		return err
	}
	if err := validatePrefixes(path+".order.prefixes", c.Order.Prefixes); err != nil {
		return err
	}
	for _, ps := range []struct {
		k string
		v []string
	}{{"offer.primitives", c.Offer.Primitives}, {"order.primitives", c.Order.Primitives}} {
		for j, p := range ps.v {
			if p != MSXSubscribe && p != MSXBulk && p != MSXInvocation {
				return fmt.Errorf("%s.%s[%d]: %q (want %s, %s or %s)", path, ps.k, j, p, MSXSubscribe, MSXBulk, MSXInvocation)
			}
		}
	}
	switch c.Order.Mode {
	case "", MSXModeCopy, MSXModeInvoke:
	default:
		return fmt.Errorf("%s.order.mode: %q (want %s or %s)", path, c.Order.Mode, MSXModeCopy, MSXModeInvoke)
	}
	for _, d := range []struct {
		k string
		v time.Duration
	}{{"offer.max_duration", c.Offer.MaxDuration}, {"order.duration", c.Order.Duration},
		{"retransmit_interval", c.RetransmitInterval}, {"retry_interval", c.RetryInterval}} {
		if d.v < 0 || d.v > 0xffffffff*time.Second {
			return fmt.Errorf("%s.%s: %v out of range", path, d.k, d.v)
		}
		if d.v > 0 && d.v < time.Second && !strings.HasSuffix(d.k, "interval") {
			return fmt.Errorf("%s.%s: %v (at least 1s: the wire counts seconds)", path, d.k, d.v)
		}
	}
	if c.MaxTries < 0 {
		return fmt.Errorf("%s.max_tries: negative", path)
	}
	if c.MaxContacts < 0 || c.MaxContacts > 1024 {
		return fmt.Errorf("%s.max_contacts: %d (want 0..1024)", path, c.MaxContacts)
	}
	return nil
}
