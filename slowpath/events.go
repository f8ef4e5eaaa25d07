package slowpath

import (
	"fmt"
	"net/netip"
)

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

// event reports ev to Config.Events, if set.
func (e *Engine) event(ev Event) {
	if e.cfg.Events != nil {
		e.cfg.Events(ev)
	}
}

// SetSites replaces the Map-Server's sites. Registrations whose prefix is no
// longer allowed to their site are dropped; the others stay.
func (e *Engine) SetSites(sites []SiteConfig) error {
	if e.ms == nil {
		return fmt.Errorf("slowpath: no Map-Server role")
	}
	c := Config{MapServer: &MapServerConfig{Sites: sites}}
	if err := c.validate(); err != nil {
		return err
	}
	var err error
	derr := e.do(func() {
		var nms *mapServer
		if nms, err = newMapServer(e, c.MapServer); err != nil {
			return
		}
		ms := e.ms
		ms.sites, ms.allowed = nms.sites, nms.allowed
		for _, t := range ms.allTables() {
			for _, ent := range t.All() {
				sp := ms.allowedFor(ent.key.IID, ent.key.Prefix)
				if sp == nil || sp.site.cfg.Name != ent.site.cfg.Name {
					for _, er := range append([]*etrReg(nil), ent.etrs...) {
						if !er.static {
							e.timers.stop(er.t)
							ms.drop(ent, er)
						}
					}
					continue
				}
				ent.site = sp.site
				ms.rebuild(ent)
			}
		}
	})
	if derr != nil {
		return derr
	}
	return err
}
