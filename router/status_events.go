package router

import (
	"hash/fnv"
	"strconv"

	"github.com/rloc-router/rloc/internal/render"
)

// Event kinds of the mapping-system pictures (the status page's
// mapping-system section, rlocctl ddt referrals / alt / msx agreements
// -o svg): published when what the picture draws changes.
const (
	// EventDDTReferrals: a DDT Map-Resolver's referral cache changed (a
	// referral cached, expired or flushed, or its roots).
	EventDDTReferrals = "ddt-referrals-changed"
	// EventALT: an ALT router's BGP sessions, ALT routes or
	// announcements changed.
	EventALT = "alt-changed"
	// EventMSX: the interconnect changed: an agreement's copy (its size,
	// complete, pulling), subscriptions, or a peer heard from for the
	// first time.
	EventMSX = "msx-changed"
)

// msWatch notices changes of the mapping-system pictures. The roles keep
// that state in their own packages (the DDT resolver, the ALT, the
// interconnect) and publish no event for it, so the router polls it on its
// housekeeping tick: each picture's fingerprint is its generation, and an
// event goes out when it differs from the last tick's. It polls only while
// someone listens (a status page or rlocctl events is open), against the
// pictures at start-up (newMSWatch) or at the last poll; the first poll
// after a quiet spell may publish one event for a change made while
// nobody listened.
type msWatch struct {
	ddt, alt, msx uint64 // fingerprints; 0: not seen yet
}

// newMSWatch returns a watcher holding r's pictures as they are now.
func newMSWatch(r *Router) *msWatch {
	w := &msWatch{}
	w.look(r)
	return w
}

// poll compares the pictures with the last poll's and publishes an event
// for each that changed, while someone listens.
func (w *msWatch) poll(r *Router) {
	if r.events.active() {
		w.look(r)
	}
}

// look compares the pictures with the last look's and publishes an
// event for each that changed.
func (w *msWatch) look(r *Router) {
	if r.engine == nil {
		return
	}
	if l, ok := r.DDTReferrals(); ok {
		w.check(r, &w.ddt, EventDDTReferrals, DDTReferralsPicture(l))
	}
	if v, err := r.ALT(); err == nil {
		w.check(r, &w.alt, EventALT, ALTPicture(v))
	}
	if l, ok := r.MSXAgreements(); ok {
		w.check(r, &w.msx, EventMSX, MSXPicture(l))
	}
}

// check publishes kind when g's fingerprint differs from *last (once one
// has been seen) and keeps it.
func (w *msWatch) check(r *Router, last *uint64, kind string, g render.Graph) {
	f := fingerprint(g)
	if *last != 0 && *last != f {
		r.events.publish(Event{Kind: kind, Detail: g.Title})
	}
	*last = f
}

// fingerprint hashes everything a picture draws (never 0).
func fingerprint(g render.Graph) uint64 {
	h := fnv.New64a()
	w := func(s string) {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	w(g.Title)
	w(g.Self)
	for _, n := range g.Nodes {
		w(n.ID)
		w(n.Label)
		w(n.Class)
		w(strconv.Itoa(n.Rank))
	}
	w("edges")
	for _, e := range g.Edges {
		w(e.From)
		w(e.To)
	}
	return h.Sum64() | 1
}
