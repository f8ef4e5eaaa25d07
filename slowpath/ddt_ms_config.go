package slowpath

import (
	"fmt"
	"time"
)

// DDTMapServerConfig tunes a Map-Server's answers to DDT Map-Resolvers
// (RFC 8111 §7.2); its YAML section is map_server.ddt. Zero fields take
// the defaults.
type DDTMapServerConfig struct {
	// AckTTL is the TTL of MS-ACK records: how long a resolver may send
	// requests for the prefix straight here; 0 means 1440 minutes.
	AckTTL time.Duration `mapstructure:"ack_ttl"`
	// NotRegisteredTTL is the TTL of MS-NOT-REGISTERED records; 0 means
	// 1 minute (a registration may come any time).
	NotRegisteredTTL time.Duration `mapstructure:"not_registered_ttl"`
	// NotAuthoritativeTTL is the TTL of NOT-AUTHORITATIVE records; 0 means
	// 1 minute.
	NotAuthoritativeTTL time.Duration `mapstructure:"not_authoritative_ttl"`
	// Peers are every Map-Server that holds the same sites, this one
	// included (RFC 8111 §6.4 referral set): MS-ACK and MS-NOT-REGISTERED
	// records carry them as their locators with the I bit clear. Empty:
	// no locators and the I bit set (the set is not known).
	Peers []DDTTarget `mapstructure:"peers"`
	// Signing signs every referral record with RSA-SHA256 (RFC 8111
	// §6.4.1) when its key_file is set; the validity defaults to ack_ttl,
	// at least an hour.
	Signing DDTSigning `mapstructure:"signing"`
}

// WithDefaults returns a copy of d with zero values replaced by defaults.
func (d DDTMapServerConfig) WithDefaults() DDTMapServerConfig {
	if d.AckTTL == 0 {
		d.AckTTL = 1440 * time.Minute
	}
	if d.NotRegisteredTTL == 0 {
		d.NotRegisteredTTL = time.Minute
	}
	if d.NotAuthoritativeTTL == 0 {
		d.NotAuthoritativeTTL = time.Minute
	}
	if d.Signing.KeyFile != "" && d.Signing.Validity == 0 {
		d.Signing.Validity = max(d.AckTTL, time.Hour)
	}
	return d
}

// Validate checks d configured under path; errors name the key.
func (d *DDTMapServerConfig) Validate(path string) error {
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"ack_ttl", d.AckTTL}, {"not_registered_ttl", d.NotRegisteredTTL}, {"not_authoritative_ttl", d.NotAuthoritativeTTL},
		{"signing.validity", d.Signing.Validity}} {
		if t.d < 0 {
			return fmt.Errorf("%s.%s: negative", path, t.key)
		}
	}
	if len(d.Peers) > 255 {
		return fmt.Errorf("%s.peers: %d peers (a referral record holds 255)", path, len(d.Peers))
	}
	for i, p := range d.Peers {
		if !p.Addr.IsValid() || p.Addr.IsUnspecified() {
			return fmt.Errorf("%s.peers[%d].addr: invalid address", path, i)
		}
	}
	if d.Signing.KeyFile != "" {
		if _, err := LoadDDTSigningKey(d.Signing.KeyFile); err != nil {
			return fmt.Errorf("%s.signing.key_file: %w", path, err)
		}
	}
	return nil
}
