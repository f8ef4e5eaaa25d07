package slowpath

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// DDTNodeConfig configures the DDT node role (RFC 8111 §7.1): the
// XEID-prefixes (instance-ID + EID prefix) the node is authoritative for,
// the delegations of parts of them to child DDT nodes or Map-Servers, and
// the TTLs and optional signature of its Map-Referrals. Its YAML section is
// ddt.
type DDTNodeConfig struct {
	// Authoritative are the XEID-prefixes this node is authoritative for
	// (RFC 8111 §3 "authoritative XEID-prefix"); a request for an EID
	// outside all of them is answered NOT-AUTHORITATIVE.
	Authoritative []EIDPrefix `mapstructure:"authoritative"`
	// Delegations are the child prefixes and who holds them (RFC 8111 §3
	// "XEID-prefix delegation"); each lies inside an authoritative prefix.
	Delegations []DDTDelegation `mapstructure:"delegations"`
	// ReferralTTL is the TTL of NODE-REFERRAL and MS-REFERRAL records;
	// 0 means 1440 minutes (a day: delegations change rarely).
	ReferralTTL time.Duration `mapstructure:"referral_ttl"`
	// HoleTTL is the TTL of DELEGATION-HOLE records; 0 means 15 minutes,
	// as for negative Map-Replies (RFC 9301 §8.1).
	HoleTTL time.Duration `mapstructure:"hole_ttl"`
	// NotAuthoritativeTTL is the TTL of NOT-AUTHORITATIVE records; 0 means
	// 1 minute (the requester should not keep asking, nor cache it long).
	NotAuthoritativeTTL time.Duration `mapstructure:"not_authoritative_ttl"`
	// Signing signs every referral record with RSA-SHA256 (RFC 8111
	// §6.4.1) when its key_file is set.
	Signing DDTSigning `mapstructure:"signing"`
}

// DDTDelegation delegates an XEID-prefix to child DDT nodes or to
// Map-Servers (RFC 8111 §3).
type DDTDelegation struct {
	EIDPrefix `mapstructure:",squash"`
	// Type is "node" (answered with NODE-REFERRAL) or "map-server"
	// (MS-REFERRAL).
	Type string `mapstructure:"type"`
	// Targets are the child DDT nodes or Map-Servers, each with a
	// priority (lower preferred, RFC 8111 §6.4) and weight.
	Targets []DDTTarget `mapstructure:"targets"`
	// Incomplete sets the I bit on referrals for this delegation: the
	// targets listed are not the whole set (RFC 8111 §6.4), so resolvers
	// should not cache them as the full set.
	Incomplete bool `mapstructure:"incomplete"`
}

// DDTTarget is one referral target: a child DDT node or a Map-Server.
type DDTTarget struct {
	// Addr is the target's address; it listens on the LISP control port.
	Addr netip.Addr `mapstructure:"addr"`
	// Priority orders the targets, lower first (RFC 8111 §6.4); 255
	// means do not use.
	Priority uint8 `mapstructure:"priority"`
	// Weight shares load between targets of equal priority.
	Weight uint8 `mapstructure:"weight"`
}

// DDTSigning is the key a DDT node signs its referrals with (RFC 8111
// §6.4.1).
type DDTSigning struct {
	// KeyFile is a PEM file holding an RSA private key (PKCS #1 "RSA
	// PRIVATE KEY" or PKCS #8 "PRIVATE KEY"), at least 2048 bits. Empty:
	// referrals are not signed.
	KeyFile string `mapstructure:"key_file"`
	// KeyTag is the Key Tag sent with each signature; 0 means the first
	// two bytes of the SHA-256 of the public key's PKIX (DER) encoding, so
	// resolvers can tell keys apart during a rollover.
	KeyTag uint16 `mapstructure:"key_tag"`
	// Validity is how long a signature stays valid after it is made; 0
	// means referral_ttl, at least an hour. A signature is reused until
	// half of it has passed.
	Validity time.Duration `mapstructure:"validity"`
}

// Delegation types (DDTDelegation.Type).
const (
	DDTNode      = "node"
	DDTMapServer = "map-server"
)

// Validate checks the DDT node configured under path; errors name the key.
func (d *DDTNodeConfig) Validate(path string) error {
	if len(d.Authoritative) == 0 {
		return fmt.Errorf("%s.authoritative: no authoritative XEID-prefix", path)
	}
	if err := validatePrefixes(path+".authoritative", d.Authoritative); err != nil {
		return err
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"referral_ttl", d.ReferralTTL}, {"hole_ttl", d.HoleTTL}, {"not_authoritative_ttl", d.NotAuthoritativeTTL}} {
		if t.d < 0 {
			return fmt.Errorf("%s.%s: negative", path, t.key)
		}
	}
	for i := range d.Delegations {
		g := &d.Delegations[i]
		f := fmt.Sprintf("%s.delegations[%d]", path, i)
		if err := g.EIDPrefix.Validate(f); err != nil {
			return err
		}
		if g.Type != DDTNode && g.Type != DDTMapServer {
			return fmt.Errorf("%s.type: %q (want %s or %s)", f, g.Type, DDTNode, DDTMapServer)
		}
		if len(g.Targets) == 0 {
			return fmt.Errorf("%s.targets: no child DDT node or Map-Server", f)
		}
		if len(g.Targets) > 255 {
			return fmt.Errorf("%s.targets: %d targets (a referral record holds 255)", f, len(g.Targets))
		}
		for j, t := range g.Targets {
			if !t.Addr.IsValid() {
				return fmt.Errorf("%s.targets[%d].addr: invalid address", f, j)
			}
		}
		if !d.covers(g.EIDPrefix) {
			return fmt.Errorf("%s.eid: %d/%v lies in no authoritative XEID-prefix", f, g.IID, g.Prefix)
		}
		for j := range i {
			if o := &d.Delegations[j]; o.IID == g.IID && o.Prefix == g.Prefix {
				return fmt.Errorf("%s.eid: %v delegated twice (delegations[%d])", f, g.Prefix, j)
			}
		}
	}
	if d.Signing.Validity < 0 {
		return fmt.Errorf("%s.signing.validity: negative", path)
	}
	if d.Signing.KeyFile != "" {
		if _, err := LoadDDTSigningKey(d.Signing.KeyFile); err != nil {
			return fmt.Errorf("%s.signing.key_file: %w", path, err)
		}
	}
	return nil
}

// covers reports whether p lies inside an authoritative prefix.
func (d *DDTNodeConfig) covers(p EIDPrefix) bool {
	for _, a := range d.Authoritative {
		if a.IID == p.IID && a.Prefix.Addr().BitLen() == p.Prefix.Addr().BitLen() &&
			a.Prefix.Bits() <= p.Prefix.Bits() && a.Prefix.Contains(p.Prefix.Addr()) {
			return true
		}
	}
	return false
}

// WithDefaults returns a copy of d with zero values replaced by defaults.
func (d DDTNodeConfig) WithDefaults() DDTNodeConfig {
	if d.ReferralTTL == 0 {
		d.ReferralTTL = 1440 * time.Minute
	}
	if d.HoleTTL == 0 {
		d.HoleTTL = 15 * time.Minute
	}
	if d.NotAuthoritativeTTL == 0 {
		d.NotAuthoritativeTTL = time.Minute
	}
	if d.Signing.KeyFile != "" && d.Signing.Validity == 0 {
		d.Signing.Validity = max(d.ReferralTTL, time.Hour)
	}
	return d
}

// LoadDDTSigningKey reads an RSA private key of at least 2048 bits from a
// PEM file (PKCS #1 or PKCS #8).
func LoadDDTSigningKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q (want RSA PRIVATE KEY or PRIVATE KEY)", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key: RFC 8111 §6.4.1 signatures are RSA-SHA256", k)
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("a %d-bit RSA key (want at least 2048)", rk.N.BitLen())
	}
	return rk, nil
}

// ParseDDTPublicKey reads an RSA public key from PEM ("PUBLIC KEY", PKIX,
// or "RSA PUBLIC KEY", PKCS #1): what a resolver verifies a delegation's
// referral signatures with.
func ParseDDTPublicKey(b []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(blk.Bytes)
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T key (want RSA)", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("PEM block %q (want PUBLIC KEY or RSA PUBLIC KEY)", blk.Type)
}

// DDTKeyTag is the default Key Tag of pub: the first two bytes of the
// SHA-256 of its PKIX (DER) encoding.
func DDTKeyTag(pub *rsa.PublicKey) uint16 {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return 0
	}
	sum := sha256.Sum256(der)
	return binary.BigEndian.Uint16(sum[:])
}
