package wire

import (
	"fmt"
)

// ReferralType is the referral type a Map-Referral record carries in its ACT
// field (RFC 8111 §6.4.1). It travels in Record.Action: write
// Action(ReferralMSAck), read ReferralType(rec.Action).
type ReferralType uint8

// Referral types (RFC 8111 §6.4.1).
const (
	// ReferralNode: the sender has a child DDT node delegation for the EID
	// (RFC 8111 §6.4.1 NODE-REFERRAL).
	ReferralNode ReferralType = 0
	// ReferralMS: the locators are Map-Servers for the EID (RFC 8111 §6.4.1
	// MS-REFERRAL).
	ReferralMS ReferralType = 1
	// ReferralMSAck: a DDT Map-Server with registered ETRs for the EID
	// accepted the request (RFC 8111 §6.4.1 MS-ACK).
	ReferralMSAck ReferralType = 2
	// ReferralMSNotRegistered: a DDT Map-Server configured for the prefix
	// has no ETR registered (RFC 8111 §6.4.1 MS-NOT-REGISTERED).
	ReferralMSNotRegistered ReferralType = 3
	// ReferralDelegationHole: the EID lies in authoritative space with no
	// delegation (RFC 8111 §6.4.1 DELEGATION-HOLE).
	ReferralDelegationHole ReferralType = 4
	// ReferralNotAuthoritative: the sender is not authoritative for the EID
	// (RFC 8111 §6.4.1 NOT-AUTHORITATIVE).
	ReferralNotAuthoritative ReferralType = 5
)

// String returns the RFC 8111 name of the referral type.
func (t ReferralType) String() string {
	switch t {
	case ReferralNode:
		return "NODE-REFERRAL"
	case ReferralMS:
		return "MS-REFERRAL"
	case ReferralMSAck:
		return "MS-ACK"
	case ReferralMSNotRegistered:
		return "MS-NOT-REGISTERED"
	case ReferralDelegationHole:
		return "DELEGATION-HOLE"
	case ReferralNotAuthoritative:
		return "NOT-AUTHORITATIVE"
	}
	return "referral-" + itoa(int(t))
}

// MapReferral is the Map-Referral message of LISP-DDT (type 6, RFC 8111
// §6.4): the answer of a DDT node to a DDT-originated Map-Request.
//
// Each record's Action holds its ReferralType, Incomplete its I bit and its
// locators the referral set (Map-Servers or child DDT nodes).
//
// Signatures: RFC 8111 §6.4 lets a record carry SigCnt signature sections
// after its locators, but defines no signature algorithm for them and no
// deployed DDT node sends any. Parse refuses a record with SigCount > 0
// (ErrBadValue) rather than guessing at their layout, and Append refuses to
// write one; nothing after such a record could be parsed reliably anyway.
type MapReferral struct {
	// Nonce is copied from the Map-Request being answered (RFC 8111 §6.4).
	Nonce Nonce
	// Records are the referral records (RFC 8111 §6.4).
	Records []Record
}

// mapReferralHeaderLen is type/reserved/record count plus the nonce.
const mapReferralHeaderLen = 12

// msxMinRecordLen is the smallest encoded mapping record: fixed part and an
// empty (AFI 0) EID; used to bound announced counts before growing slices.
const msxMinRecordLen = recordFixedLen + 2

// Len returns the encoded length of the message.
func (m *MapReferral) Len() int {
	n := mapReferralHeaderLen
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	return n
}

// Append appends the encoded message to b.
func (m *MapReferral) Append(b []byte) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, fmt.Errorf("%w: %d Map-Referral records", ErrTooLarge, len(m.Records))
	}
	b = append(b, byte(TypeMapReferral)<<4, 0, 0, byte(len(m.Records)))
	b = append(b, m.Nonce[:]...)
	for i := range m.Records {
		r := &m.Records[i]
		if err := checkReferralRecord(r); err != nil {
			return b, fmt.Errorf("Map-Referral record %d: %w", i, err)
		}
		var err error
		if b, err = r.Append(b); err != nil {
			return b, fmt.Errorf("Map-Referral record %d: %w", i, err)
		}
	}
	return b, nil
}

func checkReferralRecord(r *Record) error {
	if r.Action > Action(ReferralNotAuthoritative) {
		return fmt.Errorf("%w: referral type %d", ErrBadValue, r.Action)
	}
	if r.SigCount != 0 {
		return fmt.Errorf("%w: %d signatures (RFC 8111 §6.4 signatures are not supported)", ErrBadValue, r.SigCount)
	}
	return nil
}

// Parse reads a whole Map-Referral from b into m, reusing m's slices. Bytes
// after the last record are an error (ErrBadLength).
func (m *MapReferral) Parse(b []byte) error {
	if len(b) < mapReferralHeaderLen {
		return fmt.Errorf("%w: Map-Referral header", ErrTruncated)
	}
	if t := MessageType(b[0] >> 4); t != TypeMapReferral {
		return fmt.Errorf("%w: %v, want Map-Referral", ErrBadType, t)
	}
	count := int(b[3])
	m.Nonce = Nonce(b[4:12])
	off := mapReferralHeaderLen
	if count*msxMinRecordLen > len(b)-off {
		return fmt.Errorf("%w: %d Map-Referral records announced, %d bytes left", ErrTruncated, count, len(b)-off)
	}
	m.Records = growTo(m.Records, count)
	for i := range m.Records {
		r := &m.Records[i]
		n, err := r.Parse(b[off:])
		if err != nil {
			return fmt.Errorf("Map-Referral record %d: %w", i, err)
		}
		if err := checkReferralRecord(r); err != nil {
			return fmt.Errorf("Map-Referral record %d: %w", i, err)
		}
		off += n
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the last Map-Referral record", ErrBadLength, len(b)-off)
	}
	return nil
}
