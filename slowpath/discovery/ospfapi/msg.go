// Package ospfapi is a client of the OSPF API server of FRR's ospfd (its
// `-a` option): the protocol FRR declares in ospfd/ospf_api.h, written
// again here from that header's description of the messages. A client
// opens two TCP connections: a synchronous one it dials to the server
// (port 2607), on which it sends requests and reads one reply each, and an
// asynchronous one the server dials back to the client's port + 1, on
// which the server pushes notifications (ready, LSA update and delete,
// interface and neighbour changes). Through it a program registers opaque
// LSA types (RFC 5250), originates, refreshes and flushes opaque LSAs that
// ospfd floods for it, and follows the LSAs of the database.
package ospfapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Version is the API protocol version every message header carries
// (OSPF_API_VERSION).
const Version = 1

// DefaultPort is the API server's synchronous port (OSPF_API_SYNC_PORT);
// ospfd uses the "ospfapi" entry of /etc/services when there is one.
const DefaultPort = 2607

// MsgType is the type of an API message (the msgtype byte of the header).
type MsgType uint8

// Message types. Requests go from the client to the daemon on the
// synchronous channel; the daemon answers each with MsgReply there, and
// sends the notifications (MsgReadyNotify and after) on the asynchronous
// channel.
const (
	MsgRegisterOpaqueType   MsgType = 1
	MsgUnregisterOpaqueType MsgType = 2
	MsgRegisterEvent        MsgType = 3
	MsgSyncLSDB             MsgType = 4
	MsgOriginateRequest     MsgType = 5
	MsgDeleteRequest        MsgType = 6
	MsgSyncReachable        MsgType = 7
	MsgSyncISM              MsgType = 8
	MsgSyncNSM              MsgType = 9
	MsgReply                MsgType = 10
	MsgReadyNotify          MsgType = 11
	MsgLSAUpdateNotify      MsgType = 12
	MsgLSADeleteNotify      MsgType = 13
	MsgNewIf                MsgType = 14
	MsgDelIf                MsgType = 15
	MsgISMChange            MsgType = 16
	MsgNSMChange            MsgType = 17
	MsgReachableChange      MsgType = 18
	MsgSyncRouterID         MsgType = 19
	MsgRouterIDChange       MsgType = 20
)

// LSA types that carry opaque data (RFC 5250 §3).
const (
	LSATypeOpaqueLink uint8 = 9  // link-local scope
	LSATypeOpaqueArea uint8 = 10 // area scope
	LSATypeOpaqueAS   uint8 = 11 // AS scope
)

// Origin selects LSAs by who originated them (lsa_filter_type.origin).
type Origin uint8

// Origins of an event or database filter.
const (
	NonSelfOriginated Origin = 0
	SelfOriginated    Origin = 1
	AnyOrigin         Origin = 2
)

// Reply codes of MsgReply (msg_reply.errcode, a signed byte).
const (
	ReplyOK                      = 0
	ReplyNoSuchInterface         = -1
	ReplyNoSuchArea              = -2
	ReplyNoSuchLSA               = -3
	ReplyIllegalLSAType          = -4
	ReplyOpaqueTypeInUse         = -5
	ReplyOpaqueTypeNotRegistered = -6
	ReplyNotReady                = -7
	ReplyNoMemory                = -8
	ReplyError                   = -9
	ReplyUndef                   = -10
)

// deleteZeroLen is the delete request's flag that floods the withdrawal
// without the LSA's data (OSPF_API_DEL_ZERO_LEN_LSA).
const deleteZeroLen = 0x01

// hdrLen is the message header: version, type, body length (without the
// header), sequence number; all in network byte order.
const hdrLen = 8

// maxBody bounds a message body: the length field is 16 bits.
const maxBody = 0xffff

// LSAHeaderLen is the LSA header's length (RFC 2328 §A.4.1).
const LSAHeaderLen = 20

// ReplyError is a request the daemon refused: its reply code.
type ReplyErr struct {
	// Req is the refused request's type.
	Req MsgType
	// Code is the reply code (Reply* constants).
	Code int8
}

// Error names the request and the daemon's reason.
func (e *ReplyErr) Error() string {
	return fmt.Sprintf("ospfapi: %s refused: %s", e.Req, replyName(e.Code))
}

// IsNotReady reports whether err is the daemon's "not ready" refusal of an
// origination: no neighbour of the scope is Full and opaque-capable yet.
func IsNotReady(err error) bool {
	var re *ReplyErr
	return errors.As(err, &re) && re.Code == ReplyNotReady
}

func replyName(c int8) string {
	switch c {
	case ReplyOK:
		return "ok"
	case ReplyNoSuchInterface:
		return "no such interface"
	case ReplyNoSuchArea:
		return "no such area"
	case ReplyNoSuchLSA:
		return "no such LSA"
	case ReplyIllegalLSAType:
		return "illegal LSA type"
	case ReplyOpaqueTypeInUse:
		return "opaque type in use"
	case ReplyOpaqueTypeNotRegistered:
		return "opaque type not registered"
	case ReplyNotReady:
		return "not ready (no opaque-capable neighbour)"
	case ReplyNoMemory:
		return "no memory"
	case ReplyError:
		return "error"
	}
	return fmt.Sprintf("code %d", c)
}

// String names a message type.
func (t MsgType) String() string {
	names := [...]string{1: "register-opaque-type", "unregister-opaque-type", "register-event", "sync-lsdb",
		"originate-request", "delete-request", "sync-reachable", "sync-ism", "sync-nsm", "reply",
		"ready-notify", "lsa-update-notify", "lsa-delete-notify", "new-if", "del-if", "ism-change",
		"nsm-change", "reachable-change", "sync-router-id", "router-id-change"}
	if int(t) < len(names) && names[t] != "" {
		return names[t]
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// LSAHeader is an LSA's header (RFC 2328 §A.4.1); for an opaque LSA the
// link-state ID is the opaque type (8 bits) and opaque ID (24 bits)
// (RFC 5250 §3).
type LSAHeader struct {
	Age       uint16
	Options   uint8
	Type      uint8
	ID        uint32
	AdvRouter netip.Addr
	Seq       uint32
	Checksum  uint16
	Length    uint16
}

// OpaqueType is the opaque type of an opaque LSA's ID (RFC 5250 §3).
func (h *LSAHeader) OpaqueType() uint8 { return uint8(h.ID >> 24) }

// OpaqueID is the opaque ID of an opaque LSA's ID (RFC 5250 §3).
func (h *LSAHeader) OpaqueID() uint32 { return h.ID & 0xffffff }

// OpaqueLSAID is the link-state ID of an opaque LSA.
func OpaqueLSAID(opaqueType uint8, opaqueID uint32) uint32 {
	return uint32(opaqueType)<<24 | opaqueID&0xffffff
}

func (h *LSAHeader) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Age)
	b = append(b, h.Options, h.Type)
	b = binary.BigEndian.AppendUint32(b, h.ID)
	b = append4(b, h.AdvRouter)
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	b = binary.BigEndian.AppendUint16(b, h.Checksum)
	return binary.BigEndian.AppendUint16(b, h.Length)
}

func parseLSAHeader(b []byte) (LSAHeader, error) {
	if len(b) < LSAHeaderLen {
		return LSAHeader{}, fmt.Errorf("ospfapi: LSA header: %d bytes, need %d", len(b), LSAHeaderLen)
	}
	return LSAHeader{
		Age:       binary.BigEndian.Uint16(b[0:]),
		Options:   b[2],
		Type:      b[3],
		ID:        binary.BigEndian.Uint32(b[4:]),
		AdvRouter: netip.AddrFrom4([4]byte(b[8:12])),
		Seq:       binary.BigEndian.Uint32(b[12:]),
		Checksum:  binary.BigEndian.Uint16(b[16:]),
		Length:    binary.BigEndian.Uint16(b[18:]),
	}, nil
}

// append4 appends an IPv4 address (zeros for the zero Addr).
func append4(b []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return append(b, 0, 0, 0, 0)
	}
	v := a.As4()
	return append(b, v[:]...)
}

// Filter selects LSAs for event registration and database sync
// (lsa_filter_type): a type mask, the origin, the areas (none: all).
type Filter struct {
	// Types are the LSA types (1..16) wanted.
	Types []uint8
	// Origin selects self-originated, others' or any LSAs.
	Origin Origin
	// Areas, when not empty, limits the filter to these areas.
	Areas []netip.Addr
}

func (f *Filter) append(b []byte) []byte {
	var mask uint16
	for _, t := range f.Types {
		if t >= 1 && t <= 16 {
			mask |= 1 << (t - 1)
		}
	}
	b = binary.BigEndian.AppendUint16(b, mask)
	b = append(b, uint8(f.Origin), uint8(len(f.Areas)))
	for _, a := range f.Areas {
		b = append4(b, a)
	}
	return b
}

// EventKind is what an asynchronous notification reports.
type EventKind uint8

// Kinds of notifications.
const (
	// EventReady: the daemon can now originate LSAs of the registered
	// opaque type in the scope (an area for type 10, an interface for 9).
	EventReady EventKind = iota + 1
	// EventLSAUpdate: an LSA matching the registered filter was installed
	// (or is reported by a database sync).
	EventLSAUpdate
	// EventLSADelete: an LSA matching the filter left the database
	// (flushed or aged out).
	EventLSADelete
	// EventOther: any other notification (interface, neighbour, router-ID
	// changes), reported by type only.
	EventOther
)

// Event is one notification of the asynchronous channel.
type Event struct {
	Kind EventKind
	// Type is the message type.
	Type MsgType
	// LSAType and OpaqueType are set for EventReady.
	LSAType, OpaqueType uint8
	// Addr is the area (type 10) or interface address (type 9) of
	// EventReady.
	Addr netip.Addr
	// IfAddr and Area are the LSA's interface (type 9 only) and area (not
	// for AS-scope LSAs) for EventLSAUpdate and EventLSADelete.
	IfAddr, Area netip.Addr
	// Self is set when this router originated the LSA.
	Self bool
	// Header and Body are the LSA (Body excludes the header).
	Header LSAHeader
	Body   []byte
}

// parseEvent decodes a notification's body.
func parseEvent(t MsgType, b []byte) (Event, error) {
	ev := Event{Type: t, Kind: EventOther}
	switch t {
	case MsgReadyNotify:
		if len(b) < 8 {
			return ev, fmt.Errorf("ospfapi: %s: %d bytes, need 8", t, len(b))
		}
		ev.Kind = EventReady
		ev.LSAType, ev.OpaqueType = b[0], b[1]
		ev.Addr = netip.AddrFrom4([4]byte(b[4:8]))
	case MsgLSAUpdateNotify, MsgLSADeleteNotify:
		const fixed = 12
		if len(b) < fixed+LSAHeaderLen {
			return ev, fmt.Errorf("ospfapi: %s: %d bytes, need %d", t, len(b), fixed+LSAHeaderLen)
		}
		ev.Kind = EventLSAUpdate
		if t == MsgLSADeleteNotify {
			ev.Kind = EventLSADelete
		}
		ev.IfAddr = netip.AddrFrom4([4]byte(b[0:4]))
		ev.Area = netip.AddrFrom4([4]byte(b[4:8]))
		ev.Self = b[8] != 0
		h, _ := parseLSAHeader(b[fixed:])
		ev.Header = h
		n := int(h.Length)
		rest := b[fixed:]
		if n < LSAHeaderLen || n > len(rest) {
			return ev, fmt.Errorf("ospfapi: %s: LSA length %d, message holds %d", t, n, len(rest))
		}
		ev.Body = append([]byte(nil), rest[LSAHeaderLen:n]...)
	}
	return ev, nil
}
