package regstore

import (
	"net/netip"

	"github.com/rloc-router/rloc/wire"
)

// EventKind names a registration event.
type EventKind uint8

// Registration events.
const (
	// Accepted: a registration was stored or refreshed.
	Accepted EventKind = iota + 1
	// Rejected: a Map-Register, or one of its records, was refused;
	// Event.Reason says why.
	Rejected
	// Expired: a registration timed out.
	Expired
	// Withdrawn: a registration was removed by a record with TTL 0
	// (RFC 9301 §5.6).
	Withdrawn
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case Accepted:
		return "registration-accepted"
	case Rejected:
		return "registration-rejected"
	case Expired:
		return "registration-expired"
	case Withdrawn:
		return "registration-withdrawn"
	}
	return "event-?"
}

// Event is one registration event of a Store.
type Event[K comparable] struct {
	// Kind is what happened.
	Kind EventKind
	// Site is the site concerned; empty when none was found.
	Site string
	// Key is the registration's key; valid when HasKey.
	Key    K
	HasKey bool
	// Source is where the Map-Register came from (for Expired, where the
	// last one came from).
	Source netip.AddrPort
	// XTRID is the registrant's xTR-ID when HasXTRID (RFC 9301 §5.6).
	XTRID    wire.XTRID
	HasXTRID bool
	// Reason is why a registration was refused (errors.Is with the
	// package's errors, or an error of the Kind's Value).
	Reason error
}

// Sink receives a Store's events, on the event loop. The core's event
// stream implements it (through a small adapter per key type).
type Sink[K comparable] interface {
	// RegistrationEvent reports ev; ev is only valid during the call.
	RegistrationEvent(ev *Event[K])
}
