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
// Each record's Action holds its ReferralType, Incomplete its I bit, its
// locators the referral set (Map-Servers or child DDT nodes) and SigCount
// the number of sig sections that follow its locators (RFC 8111 §6.4).
type MapReferral struct {
	// Nonce is copied from the Map-Request being answered (RFC 8111 §6.4).
	Nonce Nonce
	// Records are the referral records (RFC 8111 §6.4).
	Records []Record
	// Signatures are the sig sections of all records in order (RFC 8111
	// §6.4.1): Records[0].SigCount of them for the first record, then the
	// second record's, and so on. Append refuses a message whose SigCounts
	// do not add up to len(Signatures).
	Signatures []Signature
}

// RecordSignatures returns the sig sections of record i (a sub-slice of
// m.Signatures). The SigCounts must add up to len(m.Signatures), as after
// a successful Parse.
func (m *MapReferral) RecordSignatures(i int) []Signature {
	off := 0
	for j := range i {
		off += int(m.Records[j].SigCount)
	}
	return m.Signatures[off : off+int(m.Records[i].SigCount)]
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
	for i := range m.Signatures {
		n += m.Signatures[i].Len()
	}
	return n
}

// Append appends the encoded message to b.
func (m *MapReferral) Append(b []byte) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, fmt.Errorf("%w: %d Map-Referral records", ErrTooLarge, len(m.Records))
	}
	nsig := 0
	for i := range m.Records {
		nsig += int(m.Records[i].SigCount)
	}
	if nsig != len(m.Signatures) {
		return b, fmt.Errorf("%w: records announce %d signatures, %d given", ErrBadValue, nsig, len(m.Signatures))
	}
	start := len(b)
	b = append(b, byte(TypeMapReferral)<<4, 0, 0, byte(len(m.Records)))
	b = append(b, m.Nonce[:]...)
	sigs := m.Signatures
	for i := range m.Records {
		r := &m.Records[i]
		if err := checkReferralRecord(r); err != nil {
			return b[:start], fmt.Errorf("Map-Referral record %d: %w", i, err)
		}
		var err error
		if b, err = r.Append(b); err != nil {
			return b[:start], fmt.Errorf("Map-Referral record %d: %w", i, err)
		}
		for j := range int(r.SigCount) {
			if b, err = sigs[j].Append(b); err != nil {
				return b[:start], fmt.Errorf("Map-Referral record %d signature %d: %w", i, j, err)
			}
		}
		sigs = sigs[r.SigCount:]
	}
	return b, nil
}

func checkReferralRecord(r *Record) error {
	if r.Action > Action(ReferralNotAuthoritative) {
		return fmt.Errorf("%w: referral type %d", ErrBadValue, r.Action)
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
	m.Signatures = m.Signatures[:0]
	if count*msxMinRecordLen > len(b)-off {
		return fmt.Errorf("%w: %d Map-Referral records announced, %d bytes left", ErrTruncated, count, len(b)-off)
	}
	m.Records = growTo(m.Records, count)
	nsig := 0
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
		// Refuse a count the buffer cannot hold before growing the slice.
		if int(r.SigCount)*sigFixedLen > len(b)-off {
			return fmt.Errorf("%w: Map-Referral record %d announces %d signatures, %d bytes left", ErrTruncated, i, r.SigCount, len(b)-off)
		}
		m.Signatures = growTo(m.Signatures, nsig+int(r.SigCount))
		for j := range int(r.SigCount) {
			n, err := m.Signatures[nsig+j].Parse(b[off:])
			if err != nil {
				return fmt.Errorf("Map-Referral record %d signature %d: %w", i, j, err)
			}
			off += n
		}
		nsig += int(r.SigCount)
	}
	m.Signatures = m.Signatures[:nsig]
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the last Map-Referral record", ErrBadLength, len(b)-off)
	}
	return nil
}
