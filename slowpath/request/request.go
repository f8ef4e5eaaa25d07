// Package request tracks outstanding control-plane requests: the one place
// where a nonce is drawn, a message is sent (directly or inside an
// Encapsulated Control Message, RFC 9301 §5.8), retransmitted with
// exponential backoff up to a try bound, failed over across a list of
// targets, and matched with its reply by nonce.
//
// # How a role uses it
//
// A role owns one Tracker per kind of request (its Map-Requests, its
// Map-Registers, its RLOC-probes), built with New from the core's Clock and
// Sender and a Config (first retransmission interval, try bound). To ask:
//
//	n := tr.NewNonce()
//	msg, _ := req.Append(buf[:0])           // the role encodes with n
//	r, err := tr.Start(&request.Spec{
//		Type:    wire.TypeMapRequest,
//		Targets: resolvers,                  // tried in turn (failover)
//		ECM:     true, InnerSrc: s, InnerDst: eid,
//		Done:    func(r *request.Request, o request.Outcome) { ... },
//	}, n, msg)
//
// Start copies the messages; every retransmission reuses that copy and the
// tracker's ECM buffer, so a retransmission allocates nothing. When a reply
// arrives, the role parses it once and calls Match with its source and
// nonce. Match returns the outstanding request (the role may then check
// the reply, e.g. its authentication, and call Complete) or says why the
// reply belongs to none: a late reply (the request gave up or was
// cancelled), a duplicate (it was answered already), a wrong source, or a
// nonce that matches nothing (counted as a nonce mismatch). Complete,
// giving up after the last try and Cancel each call Done exactly once.
//
// Registrants use the same machinery: an ETR's Map-Registers to one
// Map-Server are one request with several messages and Map-Notify as its
// reply; a multicast registrant's register to every Map-Server is one
// request with Fanout and one message per target (PerTarget). An RLOC
// probe is a direct request with MatchSource set.
//
// The tracker has no goroutine and no package-level state; all its methods
// and callbacks run on the caller's event loop.
package request

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// DefaultRecent is how many finished nonces a Tracker remembers, by
// default, to tell late and duplicate replies from nonce mismatches.
const DefaultRecent = 256

// maxShift bounds the backoff exponent so that the wait cannot overflow.
const maxShift = 30

// Config sets a Tracker's retransmission policy.
type Config struct {
	// Interval is the wait after the first send; it doubles after every
	// retransmission (exponential backoff).
	Interval time.Duration
	// MaxInterval caps the wait; 0 leaves it uncapped.
	MaxInterval time.Duration
	// MaxTries is the number of sends, the first included, before the
	// request gives up; at least 1.
	MaxTries int
	// Recent is how many finished nonces are remembered to recognise late
	// and duplicate replies; 0 means DefaultRecent.
	Recent int
	// Nonce, when set, draws nonces instead of crypto/rand (tests).
	Nonce func() wire.Nonce
}

// Outcome is how a request ended.
type Outcome uint8

// Outcomes of a request.
const (
	// Answered: Complete was called with a reply.
	Answered Outcome = iota + 1
	// GaveUp: the last try went unanswered.
	GaveUp
	// Cancelled: Cancel was called.
	Cancelled
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Answered:
		return "answered"
	case GaveUp:
		return "gave-up"
	case Cancelled:
		return "cancelled"
	}
	return "outcome-?"
}

// Status is what Match found for a reply.
type Status uint8

// Results of Match.
const (
	// Matched: the reply answers an outstanding request.
	Matched Status = iota + 1
	// Late: the request gave up or was cancelled before the reply came.
	Late
	// Duplicate: the request was answered already.
	Duplicate
	// WrongSource: the nonce is outstanding but the reply did not come
	// from a target of a request that wants its source checked.
	WrongSource
	// Mismatch: the nonce matches no request, outstanding or recent.
	Mismatch
)

// String names the status.
func (s Status) String() string {
	switch s {
	case Matched:
		return "matched"
	case Late:
		return "late"
	case Duplicate:
		return "duplicate"
	case WrongSource:
		return "wrong-source"
	case Mismatch:
		return "nonce-mismatch"
	}
	return "status-?"
}

// Stats counts a Tracker's work.
type Stats struct {
	// Started, Answered, GaveUp and Cancelled count requests.
	Started, Answered, GaveUp, Cancelled uint64
	// Sent counts messages sent (every target and message of every try);
	// Retransmits counts tries after the first.
	Sent, Retransmits uint64
	// SendErrors counts messages the sender refused or that could not be
	// encapsulated.
	SendErrors uint64
	// Late, Duplicate, WrongSource and NonceMismatch count replies that
	// matched no outstanding request, by Status.
	Late, Duplicate, WrongSource, NonceMismatch uint64
}

// Errors of Start.
var (
	// ErrNoTargets: the spec names no target.
	ErrNoTargets = errors.New("request: no targets")
	// ErrNoMessages: no message to send, or PerTarget with a message count
	// different from the target count.
	ErrNoMessages = errors.New("request: messages do not fit the targets")
	// ErrNonceInUse: the nonce is already outstanding.
	ErrNonceInUse = errors.New("request: nonce already outstanding")
)

// Spec describes one request.
type Spec struct {
	// Type is the type of the messages (for the sender's counters); with
	// ECM they leave as wire.TypeECM.
	Type wire.MessageType
	// Targets are where the messages go. Without Fanout each try goes to
	// the next target in turn (failover), starting with the first.
	Targets []netip.AddrPort
	// Fanout sends every try to every target.
	Fanout bool
	// PerTarget sends message i to target i only; otherwise every message
	// goes to every target it is sent to.
	PerTarget bool
	// ECM encapsulates each message in an Encapsulated Control Message
	// (RFC 9301 §5.8) with inner addresses InnerSrc and InnerDst, the
	// sender's local port (or InnerSrcPort) as inner source port and 4342
	// as inner destination port.
	ECM bool
	// InnerSrc and InnerDst are the ECM's inner IP source and destination
	// (RFC 9301 §5.8); both of one family.
	InnerSrc, InnerDst netip.Addr
	// DDT, with ECM, sets the ECM's D bit: a DDT-originated Map-Request
	// (RFC 8111 §6.3).
	DDT bool
	// InnerSrcPort, with ECM, is the inner UDP source port when non-zero
	// (a DDT Map-Resolver keeps the ITR's, RFC 8111 §7.3, so the ETR's
	// Map-Reply reaches the ITR); zero: the sender's local port.
	InnerSrcPort uint16
	// ECMAuth, with ECM, is LISP-SEC authentication data (RFC 9303 §6.1)
	// the ECM carries with its S bit; nil for none.
	ECMAuth *wire.ECMAuth
	// MatchSource accepts replies only from a target's address (RLOC
	// probes); replies to Map-Requests sent through a resolver come from
	// elsewhere and leave it unset.
	MatchSource bool
	// Interval and MaxTries override the Tracker's Config when non-zero.
	Interval time.Duration
	MaxTries int
	// Done is called once when the request ends; it may start requests.
	Done func(r *Request, o Outcome)
	// Value is the caller's context, returned by Request.Value.
	Value any
}

// Request is one outstanding request. Its fields are read through methods;
// it must not be used after Done returned.
type Request struct {
	tr       *Tracker
	spec     Spec
	nonce    wire.Nonce
	msgs     [][]byte
	tries    int
	next     int
	last     netip.AddrPort
	started  time.Time
	timer    Timer
	finished bool
}

// Nonce returns the request's nonce.
func (r *Request) Nonce() wire.Nonce { return r.nonce }

// Tries returns how many tries were sent.
func (r *Request) Tries() int { return r.tries }

// Target returns the target of the last try (without Fanout).
func (r *Request) Target() netip.AddrPort { return r.last }

// Started returns when the request was started.
func (r *Request) Started() time.Time { return r.started }

// Value returns Spec.Value.
func (r *Request) Value() any { return r.spec.Value }

// Tracker keeps the outstanding requests of one kind. It is not safe for
// concurrent use; it runs on the caller's event loop.
type Tracker struct {
	clk     Clock
	snd     Sender
	cfg     Config
	pending map[wire.Nonce]*Request
	// recent remembers finished nonces (with their outcome) in a ring, so
	// that a late or duplicate reply is told from a nonce mismatch.
	recent   map[wire.Nonce]Outcome
	ring     []wire.Nonce
	ringNext int
	ringFull bool
	ecmBuf   []byte
	stats    Stats
}

// New returns a Tracker sending through snd and timing with clk.
func New(clk Clock, snd Sender, cfg Config) *Tracker {
	if cfg.MaxTries < 1 {
		cfg.MaxTries = 1
	}
	if cfg.Recent <= 0 {
		cfg.Recent = DefaultRecent
	}
	return &Tracker{
		clk: clk, snd: snd, cfg: cfg,
		pending: map[wire.Nonce]*Request{},
		recent:  make(map[wire.Nonce]Outcome, cfg.Recent),
		ring:    make([]wire.Nonce, cfg.Recent),
	}
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats { return t.stats }

// Pending returns the number of outstanding requests.
func (t *Tracker) Pending() int { return len(t.pending) }

// Lookup returns the outstanding request with nonce n, or nil. It counts
// nothing (Match does).
func (t *Tracker) Lookup(n wire.Nonce) *Request { return t.pending[n] }

// Knows reports whether n is outstanding or recently finished here, without
// counting anything: a role with several trackers (requests and probes)
// gives a reply to the one that knows its nonce, so that the others do not
// count it as a mismatch.
func (t *Tracker) Knows(n wire.Nonce) bool {
	if _, ok := t.pending[n]; ok {
		return true
	}
	_, ok := t.recent[n]
	return ok
}

// NewNonce draws a nonce that is neither outstanding nor recently finished
// (RFC 9301 §5.2: a nonce identifies one request).
func (t *Tracker) NewNonce() wire.Nonce {
	for {
		var n wire.Nonce
		if t.cfg.Nonce != nil {
			n = t.cfg.Nonce()
		} else {
			_, _ = rand.Read(n[:])
		}
		if _, busy := t.pending[n]; busy {
			continue
		}
		if _, busy := t.recent[n]; busy {
			continue
		}
		return n
	}
}

// Start sends the first try of a request with nonce n and the messages
// msgs (copied) and schedules its retransmissions.
func (t *Tracker) Start(s *Spec, n wire.Nonce, msgs ...[]byte) (*Request, error) {
	if len(s.Targets) == 0 {
		return nil, ErrNoTargets
	}
	if len(msgs) == 0 || s.PerTarget && len(msgs) != len(s.Targets) {
		return nil, fmt.Errorf("%w: %d messages for %d targets", ErrNoMessages, len(msgs), len(s.Targets))
	}
	if _, busy := t.pending[n]; busy {
		return nil, ErrNonceInUse
	}
	r := &Request{tr: t, spec: *s, nonce: n, started: t.clk.Now()}
	r.spec.Targets = append([]netip.AddrPort(nil), s.Targets...)
	r.msgs = make([][]byte, len(msgs))
	for i, m := range msgs {
		r.msgs[i] = append([]byte(nil), m...)
	}
	t.pending[n] = r
	t.stats.Started++
	t.send(r)
	r.timer = t.clk.Schedule(r.started.Add(t.wait(r)), r.fire)
	return r, nil
}

// maxTries is the request's try bound.
func (r *Request) maxTries() int {
	if r.spec.MaxTries > 0 {
		return r.spec.MaxTries
	}
	return r.tr.cfg.MaxTries
}

// wait is how long to wait after r's latest try: the interval doubled once
// per try after the first, capped by MaxInterval.
func (t *Tracker) wait(r *Request) time.Duration {
	d := t.cfg.Interval
	if r.spec.Interval > 0 {
		d = r.spec.Interval
	}
	shift := min(r.tries-1, maxShift)
	w := d << shift
	if w>>shift != d {
		w = math.MaxInt64 // overflowed
	}
	if t.cfg.MaxInterval > 0 && w > t.cfg.MaxInterval {
		w = t.cfg.MaxInterval
	}
	return w
}

// fire runs when r's wait ran out: another try, or giving up.
func (r *Request) fire(now time.Time) {
	t := r.tr
	if r.finished {
		return
	}
	if r.tries >= r.maxTries() {
		t.stats.GaveUp++
		t.finish(r, GaveUp)
		return
	}
	t.stats.Retransmits++
	t.send(r)
	r.timer.Reset(now.Add(t.wait(r)))
}

// send sends one try of r.
func (t *Tracker) send(r *Request) {
	r.tries++
	s := &r.spec
	if s.Fanout {
		for i, dst := range s.Targets {
			t.sendTo(r, i, dst)
		}
		return
	}
	i := r.next % len(s.Targets)
	r.next = i + 1
	r.last = s.Targets[i]
	t.sendTo(r, i, r.last)
}

// sendTo sends r's messages for target i to dst.
func (t *Tracker) sendTo(r *Request, i int, dst netip.AddrPort) {
	if r.spec.PerTarget {
		t.sendOne(r, dst, r.msgs[i])
		return
	}
	for _, m := range r.msgs {
		t.sendOne(r, dst, m)
	}
}

// sendOne sends one message, encapsulated when the spec asks.
func (t *Tracker) sendOne(r *Request, dst netip.AddrPort, msg []byte) {
	s := &r.spec
	typ := s.Type
	if s.ECM {
		port, ok := t.snd.LocalPort(dst)
		if !ok {
			t.stats.SendErrors++
			return
		}
		if s.InnerSrcPort != 0 {
			port = s.InnerSrcPort
		}
		ecm := wire.ECM{DDT: s.DDT, Src: s.InnerSrc, Dst: s.InnerDst, SrcPort: port, DstPort: wire.ControlPort, TTL: 64, Message: msg}
		if s.ECMAuth != nil {
			ecm.Security, ecm.Auth = true, *s.ECMAuth
		}
		b, err := ecm.Append(t.ecmBuf[:0])
		if err != nil {
			t.stats.SendErrors++
			return
		}
		t.ecmBuf, msg, typ = b, b, wire.TypeECM
	}
	if err := t.snd.Send(dst, msg, typ); err != nil {
		t.stats.SendErrors++
		return
	}
	t.stats.Sent++
}

// Match finds what a reply with nonce n from src answers. Only Matched
// returns the request, which stays outstanding until Complete: the caller
// checks the reply first. Every other status is counted.
func (t *Tracker) Match(src netip.AddrPort, n wire.Nonce) (*Request, Status) {
	if r := t.pending[n]; r != nil {
		if r.spec.MatchSource && !r.fromTarget(src) {
			t.stats.WrongSource++
			return nil, WrongSource
		}
		return r, Matched
	}
	switch o, ok := t.recent[n]; {
	case !ok:
		t.stats.NonceMismatch++
		return nil, Mismatch
	case o == Answered:
		t.stats.Duplicate++
		return nil, Duplicate
	default:
		t.stats.Late++
		return nil, Late
	}
}

// FromTarget reports whether src's address is one of r's targets'.
func (r *Request) FromTarget(src netip.AddrPort) bool { return r.fromTarget(src) }

// fromTarget reports whether src is the address of one of r's targets.
func (r *Request) fromTarget(src netip.AddrPort) bool {
	a := src.Addr().Unmap()
	for _, d := range r.spec.Targets {
		if d.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// Complete ends r as answered and calls its Done. A finished request is
// left alone.
func (t *Tracker) Complete(r *Request) {
	if r == nil || r.finished {
		return
	}
	t.stats.Answered++
	t.finish(r, Answered)
}

// Next treats r's last try as unanswered at once (its reply was refused,
// e.g. a forged one): the next try goes out now, to the next target, or r
// gives up when it has had all its tries. A finished request is left alone.
func (t *Tracker) Next(r *Request) {
	if r == nil || r.finished {
		return
	}
	r.fire(t.clk.Now())
}

// Cancel ends r without an answer (a newer request replaces it, or its
// reason is gone) and calls its Done. A later reply counts as late.
func (t *Tracker) Cancel(r *Request) {
	if r == nil || r.finished {
		return
	}
	t.stats.Cancelled++
	t.finish(r, Cancelled)
}

// finish forgets r, remembers its nonce and calls Done.
func (t *Tracker) finish(r *Request, o Outcome) {
	r.finished = true
	r.timer.Stop()
	delete(t.pending, r.nonce)
	t.remember(r.nonce, o)
	if r.spec.Done != nil {
		r.spec.Done(r, o)
	}
}

// remember records a finished nonce, evicting the oldest when the ring is
// full.
func (t *Tracker) remember(n wire.Nonce, o Outcome) {
	if t.ringFull {
		delete(t.recent, t.ring[t.ringNext])
	}
	t.ring[t.ringNext] = n
	t.recent[n] = o
	t.ringNext++
	if t.ringNext == len(t.ring) {
		t.ringNext, t.ringFull = 0, true
	}
}
