package wire

// MessageType is the 4-bit type at the start of every LISP control message
// (RFC 9301 §5.1; IANA "LISP Packet Types").
type MessageType uint8

// Control message types.
const (
	TypeReserved        MessageType = 0  // RFC 9301 §5.1
	TypeMapRequest      MessageType = 1  // RFC 9301 §5.2
	TypeMapReply        MessageType = 2  // RFC 9301 §5.4
	TypeMapRegister     MessageType = 3  // RFC 9301 §5.6
	TypeMapNotify       MessageType = 4  // RFC 9301 §5.7
	TypeMapNotifyAck    MessageType = 5  // RFC 9301 §5.7
	TypeMapReferral     MessageType = 6  // RFC 8111 §6.4
	TypeInfo            MessageType = 7  // draft-ietf-lisp-nat-traversal §5
	TypeECM             MessageType = 8  // RFC 9301 §5.8
	TypeSharedExtension MessageType = 15 // RFC 8113 §3
)

// String returns the conventional name of the message type.
func (t MessageType) String() string {
	switch t {
	case TypeMapRequest:
		return "Map-Request"
	case TypeMapReply:
		return "Map-Reply"
	case TypeMapRegister:
		return "Map-Register"
	case TypeMapNotify:
		return "Map-Notify"
	case TypeMapNotifyAck:
		return "Map-Notify-Ack"
	case TypeMapReferral:
		return "Map-Referral"
	case TypeInfo:
		return "Info"
	case TypeECM:
		return "ECM"
	case TypeSharedExtension:
		return "Shared-Extension"
	}
	return "type-" + itoa(int(t))
}

// AFI is an IANA Address Family Identifier as used in LISP messages
// (RFC 9301 §5.1, RFC 8060 §3).
type AFI uint16

// Address families rloc understands.
const (
	AFINone     AFI = 0     // no address, e.g. an empty EID prefix (RFC 9301 §5.2)
	AFIIPv4     AFI = 1     // IPv4
	AFIIPv6     AFI = 2     // IPv6
	AFIMAC      AFI = 6     // IEEE 802 MAC, as sent by some peers (REFERENCES.md: accept both)
	AFIDistName AFI = 17    // distinguished name, NUL-terminated ASCII (draft-ietf-lisp-name-encoding)
	AFILCAF     AFI = 16387 // LISP Canonical Address Format (RFC 8060 §3)
	AFIMAC48    AFI = 16389 // 48-bit MAC (RFC 8060 §4.1; IANA AFI 16389)
)

// Action is the 3-bit ACT field of a mapping record: what an ITR does with
// packets for a negative (RLOC-less) mapping (RFC 9301 §5.4).
type Action uint8

// Record actions.
const (
	ActionNoAction         Action = 0 // RFC 9301 §5.4: no action (map-cache entry with RLOCs)
	ActionNativelyForward  Action = 1 // RFC 9301 §5.4: forward without encapsulation
	ActionSendMapRequest   Action = 2 // RFC 9301 §5.4: send a Map-Request for matching packets
	ActionDrop             Action = 3 // RFC 9301 §5.4: Drop/No-Reason
	ActionDropPolicyDenied Action = 4 // RFC 9301 §5.4: Drop/Policy-Denied
	ActionDropAuthFailure  Action = 5 // RFC 9301 §5.4: Drop/Auth-Failure
)

// String returns the RFC name of the action.
func (a Action) String() string {
	switch a {
	case ActionNoAction:
		return "no-action"
	case ActionNativelyForward:
		return "native-forward"
	case ActionSendMapRequest:
		return "send-map-request"
	case ActionDrop:
		return "drop"
	case ActionDropPolicyDenied:
		return "drop-policy-denied"
	case ActionDropAuthFailure:
		return "drop-auth-failure"
	}
	return "action-" + itoa(int(a))
}

// Well-known UDP ports (RFC 9300 §5.3, RFC 9301 §5.1).
const (
	DataPort    = 4341 // LISP data
	ControlPort = 4342 // LISP control
)

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Nonce is the 64-bit nonce of Map-Request, Map-Reply, Map-Register and
// Map-Notify (RFC 9301 §5.2). It is kept as 8 opaque bytes and echoed
// unchanged, whatever byte order the peer that chose it used.
type Nonce [8]byte

// String formats the nonce as 16 hex digits.
func (n Nonce) String() string {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i, v := range n {
		b[2*i], b[2*i+1] = hex[v>>4], hex[v&15]
	}
	return string(b[:])
}

// PeekType returns the message type of the control message in b: the high
// four bits of its first byte (RFC 9301 §5.1).
func PeekType(b []byte) (MessageType, error) {
	if len(b) == 0 {
		return 0, ErrTruncated
	}
	return MessageType(b[0] >> 4), nil
}
