package regstore

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// Defaults of NotifyConfig.
const (
	// DefaultNotifyInterval is the first retransmission wait of an
	// unsolicited Map-Notify.
	DefaultNotifyInterval = time.Second
	// DefaultNotifyTries is how many times an unsolicited Map-Notify is
	// sent before giving up: once and 3 retransmissions.
	DefaultNotifyTries = 4
)

// Errors of Notify and Ack.
var (
	// ErrNoNotifyKey: NotifyConfig.Key has no secret to sign with.
	ErrNoNotifyKey = errors.New("no key to sign unsolicited Map-Notifies with")
	// ErrUnmatchedAck: a Map-Notify-Ack answers no outstanding Map-Notify
	// (late, duplicate or a nonce mismatch; the tracker counts which).
	ErrUnmatchedAck = errors.New("Map-Notify-Ack answers no outstanding Map-Notify")
)

// NotifyConfig configures unsolicited Map-Notifies (RFC 9301 §5.7): sent
// with a fresh nonce and retransmitted with exponential backoff until a
// Map-Notify-Ack with that nonce, authenticated with Key, comes back.
type NotifyConfig struct {
	// Key signs the Map-Notifies (as Key.Variant(nil): full length and
	// whole-message coverage unless the key sets them) and checks the Acks.
	Key Key
	// Interval is the first retransmission wait, doubled after each;
	// 0 means DefaultNotifyInterval.
	Interval time.Duration
	// MaxTries bounds the sends, the first included; 0 means
	// DefaultNotifyTries.
	MaxTries int
}

// noteKey names one notification: a key's change told to one destination.
type noteKey[K comparable] struct {
	k   K
	dst netip.AddrPort
}

// notes are a Store's unsolicited Map-Notifies awaiting their Ack.
type notes[K comparable] struct {
	tr      *request.Tracker
	keys    []Key // the notify key, as Verify takes it
	pending map[noteKey[K]]*request.Request
	spec    request.Spec
	dst     [1]netip.AddrPort // the one target, copied by Start
	msg     wire.MapNotify
	authBuf []byte
	buf     []byte
	err     uint64
	badAuth uint64
}

func (n *notes[K]) init(clk request.Clock, snd request.Sender, c NotifyConfig) {
	if c.Interval <= 0 {
		c.Interval = DefaultNotifyInterval
	}
	if c.MaxTries <= 0 {
		c.MaxTries = DefaultNotifyTries
	}
	n.tr = request.New(clk, snd, request.Config{Interval: c.Interval, MaxTries: c.MaxTries})
	n.keys = []Key{c.Key}
	n.pending = map[noteKey[K]]*request.Request{}
	n.spec = request.Spec{Type: wire.TypeMapNotify, Done: n.done}
}

// done forgets a finished notification.
func (n *notes[K]) done(r *request.Request, _ request.Outcome) {
	nk := r.Value().(noteKey[K])
	if n.pending[nk] == r {
		delete(n.pending, nk)
	}
}

// Notify sends dst an unsolicited Map-Notify about k carrying recs, with a
// fresh nonce, signed with the notify key, and retransmits it until
// acknowledged or MaxTries sends went unanswered (RFC 9301 §5.7). An
// unacknowledged older notification of k to dst is cancelled: only the
// latest state is worth retransmitting.
func (s *Store[K, V]) Notify(k K, dst netip.AddrPort, recs []wire.Record) error {
	n := &s.notes
	key := &n.keys[0]
	if len(key.Secret) == 0 {
		return ErrNoNotifyKey
	}
	nk := noteKey[K]{k, dst}
	n.tr.Cancel(n.pending[nk])
	nonce := n.tr.NewNonce()
	n.authBufFor(key)
	n.msg.Nonce, n.msg.Records = nonce, recs
	b, err := n.msg.AppendSigned(n.buf[:0], key.Secret)
	n.msg.Records = nil // the caller's
	if err != nil {
		n.err++
		return fmt.Errorf("regstore: unsolicited Map-Notify: %w", err)
	}
	n.buf = b
	spec := n.spec
	n.dst[0] = dst
	spec.Targets = n.dst[:]
	spec.Value = nk
	r, err := n.tr.Start(&spec, nonce, b)
	if err != nil {
		n.err++
		return err
	}
	n.pending[nk] = r
	return nil
}

// authBufFor sizes the Map-Notify's authentication field for key.
func (n *notes[K]) authBufFor(key *Key) {
	n.msg.Auth = key.Auth(nil, &n.authBuf)
}

// Ack matches a parsed Map-Notify-Ack, whose received bytes are raw, with
// the unsolicited Map-Notify of its nonce and checks its authentication
// with the notify key (RFC 9301 §5.7); the notification then stops being
// retransmitted. A refused Ack leaves it outstanding. It returns the
// variant the Ack verified with.
func (s *Store[K, V]) Ack(src netip.AddrPort, raw []byte, ack *wire.MapNotifyAck) (wire.AuthVariant, error) {
	n := &s.notes
	r, st := n.tr.Match(src, ack.Nonce)
	if st != request.Matched {
		return wire.AuthVariant{}, fmt.Errorf("%w: %v", ErrUnmatchedAck, st)
	}
	_, v, err := Verify(raw, &ack.Auth, n.keys)
	if err != nil {
		n.badAuth++
		return v, err
	}
	n.tr.Complete(r)
	return v, nil
}

// Notifying reports whether a notification of k to dst awaits its Ack.
func (s *Store[K, V]) Notifying(k K, dst netip.AddrPort) bool {
	return s.notes.pending[noteKey[K]{k, dst}] != nil
}

// CancelNotify stops retransmitting the notification of k to dst, if any.
func (s *Store[K, V]) CancelNotify(k K, dst netip.AddrPort) {
	s.notes.tr.Cancel(s.notes.pending[noteKey[K]{k, dst}])
}

// NotifyStats returns the counters of the unsolicited Map-Notifies: Sent,
// Retransmits, Answered (acknowledged), GaveUp, and the Acks that were
// late, duplicate or matched no nonce.
func (s *Store[K, V]) NotifyStats() request.Stats { return s.notes.tr.Stats() }
