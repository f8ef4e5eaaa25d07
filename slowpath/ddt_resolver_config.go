package slowpath

import (
	"crypto/rsa"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// DDTResolverConfig tunes the DDT Map-Resolver (RFC 8111 §7.3); zero
// fields take the defaults below. Its YAML section is map_resolver.ddt.
type DDTResolverConfig struct {
	// MaxHops bounds the referrals followed for one request (stretch
	// protection); 0 means 8 (DefaultDDTMaxHops).
	MaxHops int `mapstructure:"max_hops"`
	// RetransmitInterval is the wait after the first DDT Map-Request to a
	// referral target; it doubles per retransmission. 0 means
	// 1s (DefaultDDTInterval).
	RetransmitInterval time.Duration `mapstructure:"retransmit_interval"`
	// TriesPerTarget is the number of Map-Requests each referral target
	// gets before the resolution gives up; 0 means 2 (DefaultDDTTries).
	TriesPerTarget int `mapstructure:"tries_per_target"`
	// CacheSize bounds the referral cache's learned entries; 0 means
	// 10000 (DefaultReferralCacheSize).
	CacheSize int `mapstructure:"cache_size"`
	// MaxPending bounds the resolutions in progress; 0 means
	// 10000 (DefaultDDTMaxPending).
	MaxPending int `mapstructure:"max_pending"`
}

// Defaults of DDTResolverConfig.
const (
	DefaultDDTMaxHops    = 8
	DefaultDDTInterval   = time.Second
	DefaultDDTTries      = 2
	DefaultDDTMaxPending = 10000
)

// WithDefaults returns a copy of d with zero values replaced by defaults.
func (d DDTResolverConfig) WithDefaults() DDTResolverConfig {
	if d.MaxHops == 0 {
		d.MaxHops = DefaultDDTMaxHops
	}
	if d.RetransmitInterval == 0 {
		d.RetransmitInterval = DefaultDDTInterval
	}
	if d.TriesPerTarget == 0 {
		d.TriesPerTarget = DefaultDDTTries
	}
	if d.CacheSize == 0 {
		d.CacheSize = DefaultReferralCacheSize
	}
	if d.MaxPending == 0 {
		d.MaxPending = DefaultDDTMaxPending
	}
	return d
}

// Validate checks d configured under path; errors name the key.
func (d *DDTResolverConfig) Validate(path string) error {
	for _, f := range []struct {
		key string
		v   int
		max int
	}{{"max_hops", d.MaxHops, 64}, {"tries_per_target", d.TriesPerTarget, 16},
		{"cache_size", d.CacheSize, 10_000_000}, {"max_pending", d.MaxPending, 1_000_000}} {
		if f.v < 0 || f.v > f.max {
			return fmt.Errorf("%s.%s: %d out of range 0..%d", path, f.key, f.v, f.max)
		}
	}
	if d.RetransmitInterval < 0 || d.RetransmitInterval > time.Minute {
		return fmt.Errorf("%s.retransmit_interval: %v out of range 0..1m", path, d.RetransmitInterval)
	}
	return nil
}

// DDTKey names the public key of the DDT node (or Map-Server) that is
// authoritative for an XEID-prefix: a DDT Map-Resolver verifies the
// signatures (RFC 8111 §6.4.1) of the referrals that node sends. The
// roots' key has an EID prefix of length 0 (0.0.0.0/0 or ::/0): a root
// speaks for the whole space of its instance-ID.
type DDTKey struct {
	// IID and Prefix are the delegated XEID-prefix the key's holder is
	// asked about (the prefix of the referral that leads to it).
	EIDPrefix `mapstructure:",squash"`
	// KeyFile is a PEM file with the RSA public key ("PUBLIC KEY" or "RSA
	// PUBLIC KEY"), at least 2048 bits.
	KeyFile string `mapstructure:"key_file"`
}

// DDTPublicKey is a loaded DDTKey.
type DDTPublicKey struct {
	// IID and Prefix (masked) are DDTKey's.
	IID    uint32
	Prefix netip.Prefix
	// Key is the RSA public key; KeyTag its default key tag (DDTKeyTag).
	Key    *rsa.PublicKey
	KeyTag uint16
	// File is where it was read from, for messages.
	File string
}

// LoadDDTKeys reads the keys configured under path (e.g.
// map_resolver.ddt_keys); errors name the key and the file.
func LoadDDTKeys(path string, keys []DDTKey) ([]DDTPublicKey, error) {
	var out []DDTPublicKey
	for i := range keys {
		k := &keys[i]
		f := fmt.Sprintf("%s[%d]", path, i)
		if err := k.EIDPrefix.Validate(f); err != nil {
			return nil, err
		}
		if k.KeyFile == "" {
			return nil, fmt.Errorf("%s.key_file: empty", f)
		}
		b, err := os.ReadFile(k.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.key_file: %w", f, err)
		}
		pub, err := ParseDDTPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s.key_file: %s: %w", f, k.KeyFile, err)
		}
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%s.key_file: %s: a %d-bit RSA key (want at least 2048)", f, k.KeyFile, pub.N.BitLen())
		}
		p := k.Prefix.Masked()
		for j := range out {
			if out[j].IID == k.IID && out[j].Prefix == p {
				return nil, fmt.Errorf("%s.eid: %d/%v has a key already (%s[%d])", f, k.IID, p, path, j)
			}
		}
		out = append(out, DDTPublicKey{IID: k.IID, Prefix: p, Key: pub, KeyTag: DDTKeyTag(pub), File: k.KeyFile})
	}
	return out, nil
}
