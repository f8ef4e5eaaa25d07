package wire

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// SigAlgorithm is the Sig-Algorithm field of a Map-Referral signature
// section (RFC 8111 §6.4.1).
type SigAlgorithm uint8

// SigRSASHA256 is RSA-SHA256, Sig-Algorithm 1 (RFC 8111 §6.4.1):
// RSASSA-PKCS1-v1_5 (RFC 3447 §8.2) over SHA-256, the one algorithm rloc
// signs and verifies (docs/ddt.md says what of this is unchecked).
const SigRSASHA256 SigAlgorithm = 1

// String returns the RFC 8111 name of the algorithm.
func (a SigAlgorithm) String() string {
	if a == SigRSASHA256 {
		return "RSA-SHA256"
	}
	return "sig-algorithm-" + itoa(int(a))
}

// Signature is one sig section of a Map-Referral record (RFC 8111 §6.4.1);
// a record carries SigCnt of them after its locators.
type Signature struct {
	// OriginalTTL is the record TTL the signature covers; a cached record's
	// TTL decreases, so the verifier needs the original (RFC 8111 §6.4.1
	// Original Record TTL).
	OriginalTTL uint32
	// Expiration is the end of the signature's validity period, in seconds
	// since 1970-01-01 UTC (RFC 8111 §6.4.1 Signature Expiration).
	Expiration uint32
	// Inception is the start of the signature's validity period, in seconds
	// since 1970-01-01 UTC (RFC 8111 §6.4.1 Signature Inception).
	Inception uint32
	// KeyTag tells which of the signer's keys made the signature (RFC 8111
	// §6.4.1 Key Tag).
	KeyTag uint16
	// Algorithm is the Sig-Algorithm (RFC 8111 §6.4.1); the two reserved
	// fields after it are sent as zero and ignored.
	Algorithm SigAlgorithm
	// Sig is the Signature field; its length is the Sig Length field
	// (RFC 8111 §6.4.1). Parse copies into the slice's storage, reusing it.
	Sig []byte
}

// sigFixedLen is the sig section before the Signature field.
const sigFixedLen = 20

// Len returns the encoded length of the sig section.
func (s *Signature) Len() int { return sigFixedLen + len(s.Sig) }

// Append appends the sig section to b.
func (s *Signature) Append(b []byte) ([]byte, error) {
	if len(s.Sig) > 0xffff {
		return b, fmt.Errorf("%w: %d-byte signature", ErrTooLarge, len(s.Sig))
	}
	b = s.appendHeader(b, uint16(len(s.Sig)))
	return append(b, s.Sig...), nil
}

// appendHeader appends the fixed part of the sig section with the given
// Sig Length.
func (s *Signature) appendHeader(b []byte, sigLen uint16) []byte {
	b = binary.BigEndian.AppendUint32(b, s.OriginalTTL)
	b = binary.BigEndian.AppendUint32(b, s.Expiration)
	b = binary.BigEndian.AppendUint32(b, s.Inception)
	b = binary.BigEndian.AppendUint16(b, s.KeyTag)
	b = binary.BigEndian.AppendUint16(b, sigLen)
	return append(b, byte(s.Algorithm), 0, 0, 0)
}

// Parse reads one sig section from the start of b and returns the bytes
// used.
func (s *Signature) Parse(b []byte) (int, error) {
	if len(b) < sigFixedLen {
		return 0, fmt.Errorf("%w: sig section", ErrTruncated)
	}
	n := int(binary.BigEndian.Uint16(b[14:]))
	if len(b)-sigFixedLen < n {
		return 0, fmt.Errorf("%w: %d-byte signature, %d bytes left", ErrTruncated, n, len(b)-sigFixedLen)
	}
	s.OriginalTTL = binary.BigEndian.Uint32(b)
	s.Expiration = binary.BigEndian.Uint32(b[4:])
	s.Inception = binary.BigEndian.Uint32(b[8:])
	s.KeyTag = binary.BigEndian.Uint16(b[12:])
	s.Algorithm = SigAlgorithm(b[16])
	s.Sig = append(s.Sig[:0], b[sigFixedLen:sigFixedLen+n]...)
	return sigFixedLen + n, nil
}

// AppendSignedData appends to b the bytes a signature s of the referral
// record r covers (RFC 8111 §6.4.1): the record as encoded, with its Record
// TTL set to zero (the TTL is covered as s.OriginalTTL instead), followed by
// the fixed part of the sig section with Sig Length zero and without the
// Signature field. RFC 8111 says the signature covers the entire record with
// the record TTL and the signature fields zeroed; it gives no byte layout,
// and this is rloc's reading of it (the validity period, the key tag and
// the algorithm are covered too, so a forger cannot extend them).
func AppendSignedData(b []byte, r *Record, s *Signature) ([]byte, error) {
	start := len(b)
	b, err := r.Append(b)
	if err != nil {
		return b[:start], err
	}
	clear(b[start : start+4])
	return s.appendHeader(b, 0), nil
}

// SignReferral signs the referral record r with key: it fills s.Sig with
// the RSA-SHA256 signature (RFC 8111 §6.4.1) of what AppendSignedData
// yields, after setting s.OriginalTTL to r.TTL and s.Algorithm. The caller
// sets the validity period and key tag and appends s to the record's
// signatures (r.SigCount counts them; it is part of the signed record).
// scratch is reused for the signed bytes and returned.
func SignReferral(scratch []byte, r *Record, s *Signature, key *rsa.PrivateKey) ([]byte, error) {
	s.OriginalTTL, s.Algorithm = r.TTL, SigRSASHA256
	data, err := AppendSignedData(scratch[:0], r, s)
	if err != nil {
		return data, err
	}
	sum := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return data, fmt.Errorf("signing referral: %w", err)
	}
	s.Sig = append(s.Sig[:0], sig...)
	return data, nil
}

// VerifyReferral checks the signature s of the referral record r against
// pub at time now (RFC 8111 §6.4.1): the algorithm is RSA-SHA256, now lies
// in the validity period, the record's TTL is not above the signed original
// TTL, and the signature verifies over AppendSignedData. Errors wrap ErrAuth (or ErrBadValue for an
// unknown algorithm). scratch is reused and returned.
func VerifyReferral(scratch []byte, r *Record, s *Signature, pub *rsa.PublicKey, now time.Time) ([]byte, error) {
	if s.Algorithm != SigRSASHA256 {
		return scratch, fmt.Errorf("%w: %v", ErrBadValue, s.Algorithm)
	}
	t := now.Unix()
	if t < int64(s.Inception) || t > int64(s.Expiration) {
		return scratch, fmt.Errorf("%w: signature valid %d..%d, now %d", ErrAuth, s.Inception, s.Expiration, t)
	}
	if r.TTL > s.OriginalTTL {
		return scratch, fmt.Errorf("%w: record TTL %d above the signed TTL %d", ErrAuth, r.TTL, s.OriginalTTL)
	}
	data, err := AppendSignedData(scratch[:0], r, s)
	if err != nil {
		return data, err
	}
	sum := sha256.Sum256(data)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], s.Sig); err != nil {
		return data, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	return data, nil
}
