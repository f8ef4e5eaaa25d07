package router

import (
	"sync"
	"time"
)

// Event kinds published on the management event stream.
const (
	EventMiss                 = "miss"                  // a worker missed the map-cache
	EventMappingInstalled     = "mapping-installed"     // the ITR installed a positive mapping
	EventNegativeInstalled    = "negative-installed"    // the ITR installed a negative mapping
	EventRLOCReachability     = "rloc-reachability"     // probing found an RLOC up or down
	EventRegistrationAccepted = "registration-accepted" // the Map-Server stored a registration
	EventRegistrationRejected = "registration-rejected" // the Map-Server refused a Map-Register
	EventRegistrationExpired  = "registration-expired"  // a registration timed out
	EventReload               = "reload"                // the configuration was reloaded
)

// Event is one entry of the management event stream (one NDJSON line).
type Event struct {
	// Time is when the router saw the event.
	Time time.Time `json:"time"`
	// Kind is one of the Event* constants.
	Kind string `json:"kind"`
	// IID and EID name the mapping or destination concerned.
	IID uint32 `json:"iid"`
	EID string `json:"eid,omitempty"`
	// RLOC is the locator concerned (reachability events).
	RLOC string `json:"rloc,omitempty"`
	// Up is the new reachability of RLOC.
	Up bool `json:"up,omitempty"`
	// RLOCs are the locators of an installed mapping.
	RLOCs []string `json:"rlocs,omitempty"`
	// Source is the sender of a control message (registration events).
	Source string `json:"source,omitempty"`
	// Detail is free text (action, site, source, reason).
	Detail string `json:"detail,omitempty"`
}

// hub fans events out to subscribers; a slow subscriber loses events
// rather than slowing the router down.
type hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func newHub() *hub { return &hub{subs: map[chan Event]struct{}{}} }

// publish sends ev to every subscriber that has room.
func (h *hub) publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- ev:
		default:
		}
	}
}

// subscribe returns a channel of future events and its cancel function.
func (h *hub) subscribe() (<-chan Event, func()) {
	c := make(chan Event, 256)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}

// active reports whether anyone listens (so callers can skip formatting).
func (h *hub) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}
