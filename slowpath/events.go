package slowpath

import "net/netip"

// EventKind names an engine event.
type EventKind uint8

// Engine events.
const (
	// EventRegistrationAccepted: the Map-Server stored (or refreshed) a
	// registration of EID from Source for Site.
	EventRegistrationAccepted EventKind = iota + 1
	// EventRegistrationRejected: the Map-Server refused a Map-Register from
	// Source; Reason says why (unknown site, bad key, policy).
	EventRegistrationRejected
	// EventRegistrationExpired: a registration timed out.
	EventRegistrationExpired
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventRegistrationAccepted:
		return "registration-accepted"
	case EventRegistrationRejected:
		return "registration-rejected"
	case EventRegistrationExpired:
		return "registration-expired"
	}
	return "event-?"
}

// Event is something the engine reports through Config.Events.
type Event struct {
	Kind EventKind
	// Site is the site concerned, when known.
	Site string
	// EID is the EID prefix concerned, when known.
	EID EIDPrefix
	// Source is the sender of the message.
	Source netip.AddrPort
	// Reason explains a rejection.
	Reason string
}
