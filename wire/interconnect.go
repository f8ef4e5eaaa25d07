package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// This file holds the mapping-system interconnect messages of LISP-MSX
// (draft-boucadair-lisp-subscribe, draft-boucadair-lisp-bulk): Map-Subscribe
// and Map-Subscribe-Ack, Map-Bulk-Request and Map-Bulk-Reply,
// Map-Solicit-Request and Map-Solicit-Response. The drafts leave their type
// codes to be assigned, so rloc carries each one in the shared extension
// message (type 15, RFC 8113 §3, now RFC 9304 §3) under a sub-type of its
// own. docs/interconnect.md gives the sub-types and every layout.

// SharedSubType is the 12-bit Sub-type of a shared extension message
// (type 15, RFC 8113 §3, RFC 9304 §3).
type SharedSubType uint16

// Sub-types rloc uses for the interconnect messages (docs/interconnect.md).
// They are not registered with IANA; they sit at the top of the 12-bit space,
// away from the low values registrations take.
const (
	SubTypeMapSubscribe       SharedSubType = 4080 // draft-boucadair-lisp-subscribe Map-Subscribe
	SubTypeMapSubscribeAck    SharedSubType = 4081 // draft-boucadair-lisp-subscribe Map-Subscribe-Ack
	SubTypeMapBulkRequest     SharedSubType = 4082 // draft-boucadair-lisp-bulk Map-Bulk-Request
	SubTypeMapBulkReply       SharedSubType = 4083 // draft-boucadair-lisp-bulk Map-Bulk-Reply
	SubTypeMapSolicitRequest  SharedSubType = 4084 // LISP-MSX Map-Solicit-Request
	SubTypeMapSolicitResponse SharedSubType = 4085 // LISP-MSX Map-Solicit-Response
	// 4086 is CPNP's (slowpath/cpnp).
	SubTypeMapInvoke SharedSubType = 4087 // rloc's signed envelope of an invoked ECM (LISP-MSX invocation)
)

// String names the sub-type.
func (s SharedSubType) String() string {
	switch s {
	case SubTypeMapSubscribe:
		return "Map-Subscribe"
	case SubTypeMapSubscribeAck:
		return "Map-Subscribe-Ack"
	case SubTypeMapBulkRequest:
		return "Map-Bulk-Request"
	case SubTypeMapBulkReply:
		return "Map-Bulk-Reply"
	case SubTypeMapSolicitRequest:
		return "Map-Solicit-Request"
	case SubTypeMapSolicitResponse:
		return "Map-Solicit-Response"
	case SubTypeMapInvoke:
		return "Map-Invoke"
	}
	return "sub-type-" + itoa(int(s))
}

// PeekSharedSubType returns the sub-type of the shared extension message in
// b (RFC 8113 §3: the 12 bits after the 4-bit type).
func PeekSharedSubType(b []byte) (SharedSubType, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("%w: shared extension header", ErrTruncated)
	}
	if t := MessageType(b[0] >> 4); t != TypeSharedExtension {
		return 0, fmt.Errorf("%w: %v, want Shared-Extension", ErrBadType, t)
	}
	return SharedSubType(binary.BigEndian.Uint16(b) & 0x0fff), nil
}

// msxHeaderLen is the shared extension header (type, sub-type and the two
// extension-specific bytes) plus the nonce every interconnect message has.
const msxHeaderLen = 12

const (
	msxFlagAll    = 0x80 // A bit: every EID of every instance-ID
	msxFlagMore   = 0x80 // M bit: more replies follow
	msxFlagSigned = 0x40 // S bit: an authentication field follows the nonce (bulk)
)

// Smallest encodings, used to bound counts before growing slices.
const (
	msxMinAddrLen      = 2 // AFI 0
	msxMinEIDRecordLen = 4 // reserved, mask length, AFI 0
)

func msxAppendHeader(b []byte, st SharedSubType, x1, x2 byte, n *Nonce) []byte {
	b = append(b, byte(TypeSharedExtension)<<4|byte(st>>8), byte(st), x1, x2)
	return append(b, n[:]...)
}

// msxParseHeader checks type and sub-type and returns the two
// extension-specific bytes and the nonce.
func msxParseHeader(b []byte, st SharedSubType) (x1, x2 byte, n Nonce, err error) {
	if len(b) < msxHeaderLen {
		return 0, 0, n, fmt.Errorf("%w: %v header", ErrTruncated, st)
	}
	got, err := PeekSharedSubType(b)
	if err != nil {
		return 0, 0, n, err
	}
	if got != st {
		return 0, 0, n, fmt.Errorf("%w: %v, want %v", ErrBadType, got, st)
	}
	return b[2], b[3], Nonce(b[4:12]), nil
}

func msxAppendCookie(b, cookie []byte) ([]byte, error) {
	if len(cookie) > 0xffff {
		return b, fmt.Errorf("%w: continuation cookie of %d bytes", ErrTooLarge, len(cookie))
	}
	return binary.BigEndian.AppendUint16(b, uint16(len(cookie))), nil
}

// msxParseCookie copies the n-byte cookie at the start of b into dst.
func msxParseCookie(dst, b []byte, n int) ([]byte, error) {
	if len(b) < n {
		return dst, fmt.Errorf("%w: continuation cookie of %d bytes", ErrTruncated, n)
	}
	return append(dst[:0], b[:n]...), nil
}

func msxParseAddrs(dst []Address, b []byte, count int) ([]Address, int, error) {
	if count*msxMinAddrLen > len(b) {
		return dst, 0, fmt.Errorf("%w: %d addresses announced, %d bytes left", ErrTruncated, count, len(b))
	}
	dst = growTo(dst, count)
	off := 0
	for i := range dst {
		n, err := dst[i].Parse(b[off:])
		if err != nil {
			return dst, 0, fmt.Errorf("address %d: %w", i, err)
		}
		off += n
	}
	return dst, off, nil
}

func msxParseEIDRecords(dst []EIDRecord, b []byte, count int) ([]EIDRecord, int, error) {
	if count*msxMinEIDRecordLen > len(b) {
		return dst, 0, fmt.Errorf("%w: %d EID prefixes announced, %d bytes left", ErrTruncated, count, len(b))
	}
	dst = growTo(dst, count)
	off := 0
	for i := range dst {
		n, err := dst[i].Parse(b[off:])
		if err != nil {
			return dst, 0, fmt.Errorf("EID prefix %d: %w", i, err)
		}
		off += n
	}
	return dst, off, nil
}

func msxParseRecords(dst []Record, b []byte, count int) ([]Record, int, error) {
	if count*msxMinRecordLen > len(b) {
		return dst, 0, fmt.Errorf("%w: %d records announced, %d bytes left", ErrTruncated, count, len(b))
	}
	dst = growTo(dst, count)
	off := 0
	for i := range dst {
		n, err := dst[i].Parse(b[off:])
		if err != nil {
			return dst, 0, fmt.Errorf("record %d: %w", i, err)
		}
		off += n
	}
	return dst, off, nil
}

func msxAppendEIDRecords(b []byte, rs []EIDRecord) ([]byte, error) {
	var err error
	for i := range rs {
		if b, err = rs[i].Append(b); err != nil {
			return b, fmt.Errorf("EID prefix %d: %w", i, err)
		}
	}
	return b, nil
}

func msxAppendRecords(b []byte, rs []Record) ([]byte, error) {
	var err error
	for i := range rs {
		if b, err = rs[i].Append(b); err != nil {
			return b, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return b, nil
}

// msxAuthLen is the length of the optional authentication field of the
// bulk messages: none for AuthNone.
func msxAuthLen(a *Auth) int {
	if a.Alg == AuthNone && len(a.Data) == 0 {
		return 0
	}
	return a.Len()
}

// msxAppendAuth appends the optional authentication field (zeroed) after
// the header that starts at b[start], setting the S bit, when a has an
// algorithm.
func msxAppendAuth(b []byte, start int, a *Auth) ([]byte, error) {
	if msxAuthLen(a) == 0 {
		return b, nil
	}
	if a.Alg == AuthNone {
		return b, fmt.Errorf("%w: %d bytes of authentication data without an algorithm", ErrBadValue, len(a.Data))
	}
	b[start+2] |= msxFlagSigned
	return a.append(b)
}

// msxParseAuth reads the optional authentication field after the header
// when the S bit of the flags f is set; without it a is cleared.
func msxParseAuth(b []byte, f byte, a *Auth) (int, error) {
	if f&msxFlagSigned == 0 {
		a.KeyID, a.Alg, a.Data, a.Records = 0, AuthNone, a.Data[:0], false
		return 0, nil
	}
	n, err := a.parse(b[msxHeaderLen:])
	if err != nil {
		return 0, err
	}
	if a.Alg == AuthNone {
		return 0, fmt.Errorf("%w: S bit with algorithm none", ErrBadValue)
	}
	return n, checkParsedAuth(a)
}

func msxTrailing(b []byte, off int, st SharedSubType) error {
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the %v", ErrBadLength, len(b)-off, st)
	}
	return nil
}

// MapSubscribe asks a Map-Server of a peer mapping system to notify the
// subscriber (with Map-Notify) whenever a mapping matching its filters
// changes (draft-boucadair-lisp-subscribe; carried as shared extension
// sub-type SubTypeMapSubscribe, docs/interconnect.md). A Lifetime of 0
// cancels the subscription SubscriptionID.
type MapSubscribe struct {
	// Nonce matches the Map-Subscribe-Ack to this request.
	Nonce Nonce
	// All is the A bit: subscribe to every mapping of every instance-ID;
	// Filters must then be empty.
	All bool
	// Auth authenticates the request with the key of the interconnect
	// agreement (the Map-Register authentication field, RFC 9301 §5.6); see
	// SignSubscription.
	Auth Auth
	// SubscriptionID is 0 for a new subscription, or the identifier a
	// Map-Subscribe-Ack granted, to renew, change or cancel it.
	SubscriptionID uint32
	// Lifetime is the requested lifetime in seconds; 0 cancels.
	Lifetime uint32
	// ITRRLOCs are the subscriber's RLOCs, where notifications go (at most 255).
	ITRRLOCs []Address
	// Filters are the EID prefixes subscribed to, each possibly inside an
	// instance-ID LCAF; mask length 0 selects a whole instance-ID.
	Filters []EIDRecord
}

// Len returns the encoded length of the message.
func (m *MapSubscribe) Len() int {
	n := msxHeaderLen + m.Auth.Len() + 12
	for i := range m.ITRRLOCs {
		n += m.ITRRLOCs[i].Len()
	}
	for i := range m.Filters {
		n += m.Filters[i].Len()
	}
	return n
}

func (m *MapSubscribe) check() error {
	if len(m.ITRRLOCs) > 255 || len(m.Filters) > 0xffff {
		return fmt.Errorf("%w: Map-Subscribe with %d RLOCs and %d filters", ErrTooLarge, len(m.ITRRLOCs), len(m.Filters))
	}
	if m.All && len(m.Filters) > 0 {
		return fmt.Errorf("%w: Map-Subscribe for all mappings with %d filters", ErrBadValue, len(m.Filters))
	}
	return nil
}

// Append appends the message to b with the authentication data zeroed;
// SignSubscription then fills it in.
func (m *MapSubscribe) Append(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	var f byte
	if m.All {
		f |= msxFlagAll
	}
	b = msxAppendHeader(b, SubTypeMapSubscribe, f, byte(len(m.ITRRLOCs)), &m.Nonce)
	var err error
	if b, err = m.Auth.append(b); err != nil {
		return b, fmt.Errorf("Map-Subscribe: %w", err)
	}
	b = binary.BigEndian.AppendUint32(b, m.SubscriptionID)
	b = binary.BigEndian.AppendUint32(b, m.Lifetime)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Filters)))
	b = append(b, 0, 0)
	for i := range m.ITRRLOCs {
		if b, err = m.ITRRLOCs[i].Append(b); err != nil {
			return b, fmt.Errorf("Map-Subscribe RLOC %d: %w", i, err)
		}
	}
	if b, err = msxAppendEIDRecords(b, m.Filters); err != nil {
		return b, fmt.Errorf("Map-Subscribe filter: %w", err)
	}
	return b, nil
}

// Parse reads a whole Map-Subscribe from b into m, reusing m's slices.
func (m *MapSubscribe) Parse(b []byte) error {
	f, nrloc, nonce, err := msxParseHeader(b, SubTypeMapSubscribe)
	if err != nil {
		return err
	}
	m.Nonce, m.All = nonce, f&msxFlagAll != 0
	off := msxHeaderLen
	n, err := m.Auth.parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Subscribe: %w", err)
	}
	if err := checkParsedAuth(&m.Auth); err != nil {
		return fmt.Errorf("Map-Subscribe: %w", err)
	}
	off += n
	if len(b)-off < 12 {
		return fmt.Errorf("%w: Map-Subscribe fixed fields", ErrTruncated)
	}
	m.SubscriptionID = binary.BigEndian.Uint32(b[off:])
	m.Lifetime = binary.BigEndian.Uint32(b[off+4:])
	nfilt := int(binary.BigEndian.Uint16(b[off+8:]))
	off += 12
	if m.ITRRLOCs, n, err = msxParseAddrs(m.ITRRLOCs, b[off:], int(nrloc)); err != nil {
		return fmt.Errorf("Map-Subscribe RLOCs: %w", err)
	}
	off += n
	if m.Filters, n, err = msxParseEIDRecords(m.Filters, b[off:], nfilt); err != nil {
		return fmt.Errorf("Map-Subscribe filters: %w", err)
	}
	off += n
	if err := m.check(); err != nil {
		return err
	}
	return msxTrailing(b, off, SubTypeMapSubscribe)
}

// SubscribeStatus is the outcome a Map-Subscribe-Ack reports
// (docs/interconnect.md).
type SubscribeStatus uint8

// Subscription outcomes.
const (
	SubscribeAccepted   SubscribeStatus = 0 // every filter accepted
	SubscribePartial    SubscribeStatus = 1 // accepted for part of the filters only
	SubscribeDenied     SubscribeStatus = 2 // not authorised (no agreement, bad authentication)
	SubscribeBadFilter  SubscribeStatus = 3 // a filter names space the server does not serve
	SubscribeOverloaded SubscribeStatus = 4 // resource limit reached; retry later
	SubscribeUnknownID  SubscribeStatus = 5 // renewal or cancel of an unknown subscription
)

// String names the status.
func (s SubscribeStatus) String() string {
	switch s {
	case SubscribeAccepted:
		return "accepted"
	case SubscribePartial:
		return "partial"
	case SubscribeDenied:
		return "denied"
	case SubscribeBadFilter:
		return "bad-filter"
	case SubscribeOverloaded:
		return "overloaded"
	case SubscribeUnknownID:
		return "unknown-subscription"
	}
	return "status-" + itoa(int(s))
}

// MapSubscribeAck answers a Map-Subscribe (draft-boucadair-lisp-subscribe;
// shared extension sub-type SubTypeMapSubscribeAck, docs/interconnect.md).
type MapSubscribeAck struct {
	// Nonce echoes the Map-Subscribe's nonce.
	Nonce Nonce
	// Status is the outcome.
	Status SubscribeStatus
	// Auth authenticates the answer (RFC 9301 §5.6 field); see SignSubscription.
	Auth Auth
	// SubscriptionID identifies the subscription for renewals and cancels.
	SubscriptionID uint32
	// Lifetime is the granted lifetime in seconds (0 when refused or cancelled).
	Lifetime uint32
}

// Len returns the encoded length of the message.
func (m *MapSubscribeAck) Len() int { return msxHeaderLen + m.Auth.Len() + 8 }

// Append appends the message to b with the authentication data zeroed.
func (m *MapSubscribeAck) Append(b []byte) ([]byte, error) {
	b = msxAppendHeader(b, SubTypeMapSubscribeAck, byte(m.Status), 0, &m.Nonce)
	var err error
	if b, err = m.Auth.append(b); err != nil {
		return b, fmt.Errorf("Map-Subscribe-Ack: %w", err)
	}
	b = binary.BigEndian.AppendUint32(b, m.SubscriptionID)
	return binary.BigEndian.AppendUint32(b, m.Lifetime), nil
}

// Parse reads a whole Map-Subscribe-Ack from b into m.
func (m *MapSubscribeAck) Parse(b []byte) error {
	st, _, nonce, err := msxParseHeader(b, SubTypeMapSubscribeAck)
	if err != nil {
		return err
	}
	m.Nonce, m.Status = nonce, SubscribeStatus(st)
	off := msxHeaderLen
	n, err := m.Auth.parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Subscribe-Ack: %w", err)
	}
	if err := checkParsedAuth(&m.Auth); err != nil {
		return fmt.Errorf("Map-Subscribe-Ack: %w", err)
	}
	off += n
	if len(b)-off < 8 {
		return fmt.Errorf("%w: Map-Subscribe-Ack fixed fields", ErrTruncated)
	}
	m.SubscriptionID = binary.BigEndian.Uint32(b[off:])
	m.Lifetime = binary.BigEndian.Uint32(b[off+4:])
	return msxTrailing(b, off+8, SubTypeMapSubscribeAck)
}

// SignSubscription computes the authentication data of an encoded
// Map-Subscribe or Map-Subscribe-Ack, or of a Map-Bulk-Request or
// Map-Bulk-Reply with the S bit, or of a Map-Invoke, with key, over the
// whole message with the data zeroed, as for Map-Register (RFC 9301 §5.6).
func SignSubscription(msg, key []byte) error {
	return msxSign(msg, key, msxSignedSubTypes...)
}

// msxSignedSubTypes are the sub-types whose authentication field follows
// the nonce and covers the whole message (SignSubscription).
var msxSignedSubTypes = []SharedSubType{SubTypeMapSubscribe, SubTypeMapSubscribeAck, SubTypeMapBulkRequest, SubTypeMapBulkReply, SubTypeMapInvoke}

// VerifySubscription checks the authentication data of an encoded
// Map-Subscribe or Map-Subscribe-Ack, of a Map-Bulk-Request or
// Map-Bulk-Reply with the S bit, or of a Map-Invoke, against key; an
// unauthenticated message (algorithm 0, or a bulk message without the S
// bit) fails with ErrAuth.
func VerifySubscription(msg, key []byte) error {
	return msxVerify(msg, key, msxSignedSubTypes...)
}

// msxSign signs msg, an interconnect message of one of the sub-types sts
// whose authentication field follows the nonce, with key.
func msxSign(msg, key []byte, sts ...SharedSubType) error {
	off, n, alg, err := msxAuth(msg, sts)
	if err != nil {
		return err
	}
	return SignAuth(msg, off, n, alg, key)
}

// msxVerify checks the authentication data of msg as msxSign wrote it.
func msxVerify(msg, key []byte, sts ...SharedSubType) error {
	off, n, alg, err := msxAuth(msg, sts)
	if err != nil {
		return err
	}
	return VerifyAuth(msg, off, n, alg, key)
}

func msxAuth(msg []byte, sts []SharedSubType) (off, n int, alg AuthAlg, err error) {
	st, err := PeekSharedSubType(msg)
	if err != nil {
		return 0, 0, 0, err
	}
	if !slices.Contains(sts, st) {
		return 0, 0, 0, fmt.Errorf("%w: %v carries no authentication field here", ErrBadType, st)
	}
	if (st == SubTypeMapBulkRequest || st == SubTypeMapBulkReply) && (len(msg) < msxHeaderLen || msg[2]&msxFlagSigned == 0) {
		return 0, 0, 0, fmt.Errorf("%w: %v without the S bit carries no authentication field", ErrAuth, st)
	}
	return locateAuthData(msg, msxHeaderLen)
}

// MapBulkRequest asks a peer mapping system for many or all of its mappings
// in one exchange (draft-boucadair-lisp-bulk; shared extension sub-type
// SubTypeMapBulkRequest, docs/interconnect.md). Replies come in pages: the
// first request has an empty Cookie, later ones send the Cookie of the
// previous Map-Bulk-Reply.
type MapBulkRequest struct {
	// Nonce is echoed by every Map-Bulk-Reply page.
	Nonce Nonce
	// All is the A bit: every mapping of every instance-ID; Scope must then
	// be empty.
	All bool
	// Auth, when its algorithm is not AuthNone, is sent after the nonce
	// with the S bit set: the RFC 9301 §5.6 authentication field, computed
	// with the interconnect agreement's key by SignSubscription.
	Auth Auth
	// MaxRecords bounds the records per reply page; 0 lets the responder choose.
	MaxRecords uint16
	// Cookie is the continuation cookie of the previous reply page (empty
	// for the first request).
	Cookie []byte
	// Scope lists the covering prefixes asked for, each possibly inside an
	// instance-ID LCAF (mask length 0: the whole instance-ID); names (AFI 17)
	// and AS-number LCAFs are allowed too (draft-boucadair-lisp-bulk). At
	// most 255.
	Scope []EIDRecord
}

func msxCheckScope(all bool, n int, st SharedSubType) error {
	if n > 255 {
		return fmt.Errorf("%w: %v with %d prefixes", ErrTooLarge, st, n)
	}
	if all == (n > 0) {
		return fmt.Errorf("%w: %v with A=%v and %d prefixes", ErrBadValue, st, all, n)
	}
	return nil
}

// Len returns the encoded length of the message.
func (m *MapBulkRequest) Len() int {
	n := msxHeaderLen + msxAuthLen(&m.Auth) + 4 + len(m.Cookie)
	for i := range m.Scope {
		n += m.Scope[i].Len()
	}
	return n
}

// Append appends the message to b.
func (m *MapBulkRequest) Append(b []byte) ([]byte, error) {
	if err := msxCheckScope(m.All, len(m.Scope), SubTypeMapBulkRequest); err != nil {
		return b, err
	}
	var f byte
	if m.All {
		f |= msxFlagAll
	}
	start := len(b)
	b = msxAppendHeader(b, SubTypeMapBulkRequest, f, byte(len(m.Scope)), &m.Nonce)
	b, err := msxAppendAuth(b, start, &m.Auth)
	if err != nil {
		return b[:start], fmt.Errorf("Map-Bulk-Request: %w", err)
	}
	b = binary.BigEndian.AppendUint16(b, m.MaxRecords)
	b, err = msxAppendCookie(b, m.Cookie)
	if err != nil {
		return b, err
	}
	b = append(b, m.Cookie...)
	return msxAppendEIDRecords(b, m.Scope)
}

// Parse reads a whole Map-Bulk-Request from b into m, reusing m's slices.
func (m *MapBulkRequest) Parse(b []byte) error {
	f, nscope, nonce, err := msxParseHeader(b, SubTypeMapBulkRequest)
	if err != nil {
		return err
	}
	m.Nonce, m.All = nonce, f&msxFlagAll != 0
	off := msxHeaderLen
	n, err := msxParseAuth(b, f, &m.Auth)
	if err != nil {
		return fmt.Errorf("Map-Bulk-Request: %w", err)
	}
	off += n
	if len(b)-off < 4 {
		return fmt.Errorf("%w: Map-Bulk-Request fixed fields", ErrTruncated)
	}
	m.MaxRecords = binary.BigEndian.Uint16(b[off:])
	clen := int(binary.BigEndian.Uint16(b[off+2:]))
	off += 4
	if m.Cookie, err = msxParseCookie(m.Cookie, b[off:], clen); err != nil {
		return err
	}
	off += clen
	if m.Scope, n, err = msxParseEIDRecords(m.Scope, b[off:], int(nscope)); err != nil {
		return fmt.Errorf("Map-Bulk-Request scope: %w", err)
	}
	off += n
	if err := msxCheckScope(m.All, len(m.Scope), SubTypeMapBulkRequest); err != nil {
		return err
	}
	return msxTrailing(b, off, SubTypeMapBulkRequest)
}

// MapBulkReply is one page of the answer to a Map-Bulk-Request
// (draft-boucadair-lisp-bulk; shared extension sub-type
// SubTypeMapBulkReply, docs/interconnect.md).
type MapBulkReply struct {
	// Nonce echoes the request's nonce.
	Nonce Nonce
	// More is the M bit: further pages follow; Cookie then fetches the next.
	More bool
	// Auth, when its algorithm is not AuthNone, is sent after the nonce
	// with the S bit set (RFC 9301 §5.6 field, see MapBulkRequest.Auth).
	Auth Auth
	// Cookie is the opaque continuation state to send in the next
	// Map-Bulk-Request; required when More is set.
	Cookie []byte
	// Records are the mappings of this page, as in a Map-Reply (RFC 9301
	// §5.4); at most 255.
	Records []Record
}

func msxCheckPage(more bool, cookie int, records int, st SharedSubType) error {
	if records > 255 {
		return fmt.Errorf("%w: %v with %d records", ErrTooLarge, st, records)
	}
	if more && cookie == 0 {
		return fmt.Errorf("%w: %v with more pages but no cookie", ErrBadValue, st)
	}
	return nil
}

// Len returns the encoded length of the message.
func (m *MapBulkReply) Len() int {
	n := msxHeaderLen + msxAuthLen(&m.Auth) + 2 + len(m.Cookie)
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	return n
}

// Append appends the message to b.
func (m *MapBulkReply) Append(b []byte) ([]byte, error) {
	if err := msxCheckPage(m.More, len(m.Cookie), len(m.Records), SubTypeMapBulkReply); err != nil {
		return b, err
	}
	var f byte
	if m.More {
		f |= msxFlagMore
	}
	start := len(b)
	b = msxAppendHeader(b, SubTypeMapBulkReply, f, byte(len(m.Records)), &m.Nonce)
	b, err := msxAppendAuth(b, start, &m.Auth)
	if err != nil {
		return b[:start], fmt.Errorf("Map-Bulk-Reply: %w", err)
	}
	b, err = msxAppendCookie(b, m.Cookie)
	if err != nil {
		return b, err
	}
	b = append(b, m.Cookie...)
	return msxAppendRecords(b, m.Records)
}

// Parse reads a whole Map-Bulk-Reply from b into m, reusing m's slices.
func (m *MapBulkReply) Parse(b []byte) error {
	f, nrec, nonce, err := msxParseHeader(b, SubTypeMapBulkReply)
	if err != nil {
		return err
	}
	m.Nonce, m.More = nonce, f&msxFlagMore != 0
	off := msxHeaderLen
	n, err := msxParseAuth(b, f, &m.Auth)
	if err != nil {
		return fmt.Errorf("Map-Bulk-Reply: %w", err)
	}
	off += n
	if len(b)-off < 2 {
		return fmt.Errorf("%w: Map-Bulk-Reply cookie length", ErrTruncated)
	}
	clen := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if m.Cookie, err = msxParseCookie(m.Cookie, b[off:], clen); err != nil {
		return err
	}
	off += clen
	if m.Records, n, err = msxParseRecords(m.Records, b[off:], int(nrec)); err != nil {
		return fmt.Errorf("Map-Bulk-Reply: %w", err)
	}
	off += n
	if err := msxCheckPage(m.More, len(m.Cookie), len(m.Records), SubTypeMapBulkReply); err != nil {
		return err
	}
	return msxTrailing(b, off, SubTypeMapBulkReply)
}

// MapSolicitRequest is sent by an ITR recovering from a failure to a peer
// ITR, asking for a copy of the peer's map-cache (LISP-MSX cache
// solicitation; shared extension sub-type SubTypeMapSolicitRequest,
// docs/interconnect.md). Paging works as for Map-Bulk-Request.
type MapSolicitRequest struct {
	// Nonce is echoed by every Map-Solicit-Response page.
	Nonce Nonce
	// All is the A bit: the whole map-cache; Scope must then be empty.
	All bool
	// Auth authenticates the request with the key the two peer ITRs share
	// (the Map-Register authentication field, RFC 9301 §5.6); see
	// SignSolicit.
	Auth Auth
	// MaxRecords bounds the records per response page; 0 lets the peer choose.
	MaxRecords uint16
	// Requester is the RLOC the responses go to.
	Requester Address
	// Cookie is the continuation cookie of the previous response page.
	Cookie []byte
	// Scope lists the covering prefixes asked for, as in Map-Bulk-Request;
	// at most 255.
	Scope []EIDRecord
}

// Len returns the encoded length of the message.
func (m *MapSolicitRequest) Len() int {
	n := msxHeaderLen + m.Auth.Len() + 4 + m.Requester.Len() + len(m.Cookie)
	for i := range m.Scope {
		n += m.Scope[i].Len()
	}
	return n
}

// Append appends the message to b with the authentication data zeroed;
// SignSolicit then fills it in.
func (m *MapSolicitRequest) Append(b []byte) ([]byte, error) {
	if err := msxCheckScope(m.All, len(m.Scope), SubTypeMapSolicitRequest); err != nil {
		return b, err
	}
	var f byte
	if m.All {
		f |= msxFlagAll
	}
	start := len(b)
	b = msxAppendHeader(b, SubTypeMapSolicitRequest, f, byte(len(m.Scope)), &m.Nonce)
	b, err := m.Auth.append(b)
	if err != nil {
		return b[:start], fmt.Errorf("Map-Solicit-Request: %w", err)
	}
	b = binary.BigEndian.AppendUint16(b, m.MaxRecords)
	if b, err = msxAppendCookie(b, m.Cookie); err != nil {
		return b[:start], err
	}
	if b, err = m.Requester.Append(b); err != nil {
		return b, fmt.Errorf("Map-Solicit-Request requester: %w", err)
	}
	b = append(b, m.Cookie...)
	return msxAppendEIDRecords(b, m.Scope)
}

// Parse reads a whole Map-Solicit-Request from b into m, reusing m's slices.
func (m *MapSolicitRequest) Parse(b []byte) error {
	f, nscope, nonce, err := msxParseHeader(b, SubTypeMapSolicitRequest)
	if err != nil {
		return err
	}
	m.Nonce, m.All = nonce, f&msxFlagAll != 0
	off := msxHeaderLen
	n, err := m.Auth.parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Solicit-Request: %w", err)
	}
	if err := checkParsedAuth(&m.Auth); err != nil {
		return fmt.Errorf("Map-Solicit-Request: %w", err)
	}
	off += n
	if len(b)-off < 4 {
		return fmt.Errorf("%w: Map-Solicit-Request fixed fields", ErrTruncated)
	}
	m.MaxRecords = binary.BigEndian.Uint16(b[off:])
	clen := int(binary.BigEndian.Uint16(b[off+2:]))
	off += 4
	n, err = m.Requester.Parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Solicit-Request requester: %w", err)
	}
	off += n
	if m.Cookie, err = msxParseCookie(m.Cookie, b[off:], clen); err != nil {
		return err
	}
	off += clen
	if m.Scope, n, err = msxParseEIDRecords(m.Scope, b[off:], int(nscope)); err != nil {
		return fmt.Errorf("Map-Solicit-Request scope: %w", err)
	}
	off += n
	if err := msxCheckScope(m.All, len(m.Scope), SubTypeMapSolicitRequest); err != nil {
		return err
	}
	return msxTrailing(b, off, SubTypeMapSolicitRequest)
}

// MapSolicitResponse is one page of a peer ITR's map-cache sent in answer to
// a Map-Solicit-Request (LISP-MSX; shared extension sub-type
// SubTypeMapSolicitResponse, docs/interconnect.md).
type MapSolicitResponse struct {
	// Nonce echoes the request's nonce.
	Nonce Nonce
	// More is the M bit: further pages follow; Cookie then fetches the next.
	More bool
	// Auth authenticates the page with the key the two peer ITRs share
	// (RFC 9301 §5.6 field); see SignSolicit.
	Auth Auth
	// Responder is the RLOC of the answering ITR.
	Responder Address
	// Cookie is the continuation state for the next request; required when
	// More is set.
	Cookie []byte
	// Records are map-cache entries as mapping records (RFC 9301 §5.4),
	// their TTL the minutes left in the responder's cache; at most 255.
	Records []Record
}

// Len returns the encoded length of the message.
func (m *MapSolicitResponse) Len() int {
	n := msxHeaderLen + m.Auth.Len() + 2 + m.Responder.Len() + len(m.Cookie)
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	return n
}

// Append appends the message to b with the authentication data zeroed;
// SignSolicit then fills it in.
func (m *MapSolicitResponse) Append(b []byte) ([]byte, error) {
	if err := msxCheckPage(m.More, len(m.Cookie), len(m.Records), SubTypeMapSolicitResponse); err != nil {
		return b, err
	}
	var f byte
	if m.More {
		f |= msxFlagMore
	}
	start := len(b)
	b = msxAppendHeader(b, SubTypeMapSolicitResponse, f, byte(len(m.Records)), &m.Nonce)
	b, err := m.Auth.append(b)
	if err != nil {
		return b[:start], fmt.Errorf("Map-Solicit-Response: %w", err)
	}
	if b, err = msxAppendCookie(b, m.Cookie); err != nil {
		return b[:start], err
	}
	if b, err = m.Responder.Append(b); err != nil {
		return b, fmt.Errorf("Map-Solicit-Response responder: %w", err)
	}
	b = append(b, m.Cookie...)
	return msxAppendRecords(b, m.Records)
}

// Parse reads a whole Map-Solicit-Response from b into m, reusing m's slices.
func (m *MapSolicitResponse) Parse(b []byte) error {
	f, nrec, nonce, err := msxParseHeader(b, SubTypeMapSolicitResponse)
	if err != nil {
		return err
	}
	m.Nonce, m.More = nonce, f&msxFlagMore != 0
	off := msxHeaderLen
	n, err := m.Auth.parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Solicit-Response: %w", err)
	}
	if err := checkParsedAuth(&m.Auth); err != nil {
		return fmt.Errorf("Map-Solicit-Response: %w", err)
	}
	off += n
	if len(b)-off < 2 {
		return fmt.Errorf("%w: Map-Solicit-Response cookie length", ErrTruncated)
	}
	clen := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	n, err = m.Responder.Parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Solicit-Response responder: %w", err)
	}
	off += n
	if m.Cookie, err = msxParseCookie(m.Cookie, b[off:], clen); err != nil {
		return err
	}
	off += clen
	if m.Records, n, err = msxParseRecords(m.Records, b[off:], int(nrec)); err != nil {
		return fmt.Errorf("Map-Solicit-Response: %w", err)
	}
	off += n
	if err := msxCheckPage(m.More, len(m.Cookie), len(m.Records), SubTypeMapSolicitResponse); err != nil {
		return err
	}
	return msxTrailing(b, off, SubTypeMapSolicitResponse)
}

// MapInvoke carries an Encapsulated Control Message (RFC 9301 §5.8) that a
// Map-Resolver forwards to a peer mapping system's Map-Server under an
// interconnect agreement (LISP-MSX invocation; rloc's shared extension
// sub-type SubTypeMapInvoke, docs/interconnect.md). The authentication
// field, computed with the agreement's key by SignSubscription, covers the
// whole message; the nonce and the timestamp let the receiver refuse a
// replay.
type MapInvoke struct {
	// Nonce is fresh for every invocation; the receiver refuses one it
	// saw within the acceptance window of Time.
	Nonce Nonce
	// Auth authenticates the message (RFC 9301 §5.6 field); see
	// SignSubscription.
	Auth Auth
	// Time is when the invocation was sent, in seconds since the Unix
	// epoch.
	Time uint64
	// ECM is the encapsulated Map-Request as it would have been sent on
	// its own (type 8, RFC 9301 §5.8); not parsed here.
	ECM []byte
}

// Len returns the encoded length of the message.
func (m *MapInvoke) Len() int { return msxHeaderLen + m.Auth.Len() + 8 + len(m.ECM) }

// Append appends the message to b with the authentication data zeroed;
// SignSubscription then fills it in.
func (m *MapInvoke) Append(b []byte) ([]byte, error) {
	if err := msxCheckInvokedECM(m.ECM); err != nil {
		return b, err
	}
	start := len(b)
	b = msxAppendHeader(b, SubTypeMapInvoke, 0, 0, &m.Nonce)
	b, err := m.Auth.append(b)
	if err != nil {
		return b[:start], fmt.Errorf("Map-Invoke: %w", err)
	}
	b = binary.BigEndian.AppendUint64(b, m.Time)
	return append(b, m.ECM...), nil
}

// Parse reads a whole Map-Invoke from b into m; m.ECM aliases b.
func (m *MapInvoke) Parse(b []byte) error {
	_, _, nonce, err := msxParseHeader(b, SubTypeMapInvoke)
	if err != nil {
		return err
	}
	m.Nonce = nonce
	off := msxHeaderLen
	n, err := m.Auth.parse(b[off:])
	if err != nil {
		return fmt.Errorf("Map-Invoke: %w", err)
	}
	if err := checkParsedAuth(&m.Auth); err != nil {
		return fmt.Errorf("Map-Invoke: %w", err)
	}
	off += n
	if len(b)-off < 8 {
		return fmt.Errorf("%w: Map-Invoke timestamp", ErrTruncated)
	}
	m.Time = binary.BigEndian.Uint64(b[off:])
	off += 8
	m.ECM = b[off:]
	return msxCheckInvokedECM(m.ECM)
}

// msxCheckInvokedECM checks that b starts as an ECM; the receiver parses
// the rest.
func msxCheckInvokedECM(b []byte) error {
	t, err := PeekType(b)
	if err != nil {
		return fmt.Errorf("Map-Invoke ECM: %w", err)
	}
	if t != TypeECM {
		return fmt.Errorf("%w: Map-Invoke carries a %v, want an ECM", ErrBadType, t)
	}
	return nil
}
