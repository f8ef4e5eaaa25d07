package slowpath

import (
	"strings"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// MsgStats counts the messages of one type by result.
type MsgStats struct {
	// Received counts messages accepted for processing (after rate limiting).
	Received uint64 `json:"received"`
	// Sent counts messages of this type sent.
	Sent uint64 `json:"sent"`
	// SendErrors counts sends the socket refused.
	SendErrors uint64 `json:"send_errors"`
	// BadParse counts messages that failed to parse.
	BadParse uint64 `json:"bad_parse"`
	// BadAuth counts messages whose authentication failed or whose key is
	// unknown.
	BadAuth uint64 `json:"bad_auth"`
	// RateLimited counts messages dropped by the per-source rate limit.
	RateLimited uint64 `json:"rate_limited"`
	// Rejected counts well-formed messages refused by policy (EID not
	// allowed to the site, xTR-ID required, unknown site).
	Rejected uint64 `json:"rejected"`
	// Ignored counts messages no role wanted (unmatched nonce, unsupported
	// type, request for an EID this router does not serve).
	Ignored uint64 `json:"ignored"`
	// Parsed counts messages decoded: at most once per message received
	// (the core decodes each message once and hands the result to every
	// role that wants it).
	Parsed uint64 `json:"parsed"`
	// Auth counts the messages whose authentication verified, by the
	// variant they verified with. Not in the API's per-type JSON: the
	// router reports the totals with its control counters.
	Auth AuthStats `json:"-"`
}

// AuthStats counts verified messages by authentication variant
// (wire.AuthVariant): each message counts once in each dimension.
type AuthStats struct {
	// Alg is indexed by wire.AuthAlg (1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128,
	// 3 HMAC-SHA256-128+HKDF-SHA256).
	Alg [4]uint64
	// Full and Truncated count the HMAC lengths (20/32 and 12/16 bytes).
	Full, Truncated uint64
	// Message and Records count the coverages: the whole message, or
	// through the last record (RFC 9301 §5.6).
	Message, Records uint64
	// KeyIDSet counts messages with a non-zero Key ID (RFC 9301's layout),
	// KeyIDZero those that read the same in the old 16-bit layout.
	KeyIDSet, KeyIDZero uint64
}

// Count adds a message that verified as v.
func (a *AuthStats) Count(v wire.AuthVariant) {
	if int(v.Alg) < len(a.Alg) {
		a.Alg[v.Alg]++
	}
	if v.Full {
		a.Full++
	} else {
		a.Truncated++
	}
	if v.Records {
		a.Records++
	} else {
		a.Message++
	}
	if v.KeyIDSet {
		a.KeyIDSet++
	} else {
		a.KeyIDZero++
	}
}

// Add adds o's counters to a.
func (a *AuthStats) Add(o *AuthStats) {
	for i := range a.Alg {
		a.Alg[i] += o.Alg[i]
	}
	a.Full += o.Full
	a.Truncated += o.Truncated
	a.Message += o.Message
	a.Records += o.Records
	a.KeyIDSet += o.KeyIDSet
	a.KeyIDZero += o.KeyIDZero
}

// AuthTotals returns the authentication variants counted over every
// message type.
func (s *Stats) AuthTotals() AuthStats {
	var a AuthStats
	for t := range s.Msgs {
		a.Add(&s.Msgs[t].Auth)
	}
	return a
}

// Each calls f with the kebab-case name and value of every counter, as
// the management API reports them.
func (a *AuthStats) Each(f func(name string, v uint64)) {
	for alg := wire.AuthHMACSHA1_96; int(alg) < len(a.Alg); alg++ {
		f("auth_"+strings.ReplaceAll(alg.String(), "-", "_"), a.Alg[alg])
	}
	f("auth_full", a.Full)
	f("auth_truncated", a.Truncated)
	f("auth_coverage_message", a.Message)
	f("auth_coverage_records", a.Records)
	f("auth_key_id_set", a.KeyIDSet)
	f("auth_key_id_zero", a.KeyIDZero)
}

// add adds o's counters to s.
func (s *MsgStats) add(o *MsgStats) {
	s.Received += o.Received
	s.Sent += o.Sent
	s.SendErrors += o.SendErrors
	s.BadParse += o.BadParse
	s.BadAuth += o.BadAuth
	s.RateLimited += o.RateLimited
	s.Rejected += o.Rejected
	s.Ignored += o.Ignored
	s.Parsed += o.Parsed
	s.Auth.Add(&o.Auth)
}

// LatencyBuckets are the upper bounds of the resolution latency histogram.
var latencyBuckets = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// Histogram is a fixed-bucket latency histogram, in the shape a Prometheus
// histogram is built from.
type Histogram struct {
	// Bounds are the bucket upper bounds.
	Bounds []time.Duration
	// Counts[i] counts observations <= Bounds[i] and > Bounds[i-1];
	// Counts[len(Bounds)] counts the larger ones.
	Counts []uint64
	// Sum is the sum of all observations.
	Sum time.Duration
	// Count is the number of observations.
	Count uint64
}

// NewHistogram returns an empty latency histogram.
func NewHistogram() Histogram {
	return Histogram{Bounds: latencyBuckets[:], Counts: make([]uint64, len(latencyBuckets)+1)}
}

// Observe adds one observation.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.Bounds) && d > h.Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += d
	h.Count++
}

// Quantile estimates the q-quantile (0..1) as the upper bound of the bucket
// that holds it; the last bucket reports the largest bound.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q * float64(h.Count))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen > rank {
			if i < len(h.Bounds) {
				return h.Bounds[i]
			}
			break
		}
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Clone returns a copy of h that shares nothing with it.
func (h Histogram) Clone() Histogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

// Stats is a snapshot of an engine's counters.
type Stats struct {
	// Msgs counts messages by type (index wire.MessageType) and result.
	Msgs [16]MsgStats
	// Short counts empty datagrams and datagrams truncated by the receive
	// buffer.
	Short uint64
	// Oversize counts the datagrams larger than the receive buffer (9216
	// bytes; e.g. a registration whose RLE has more than about 900
	// entries), which are dropped; they are part of Short too.
	Oversize uint64
	// RateTableFull counts packets from sources that did not fit the rate
	// limit table and shared its overflow bucket.
	RateTableFull uint64
	// RateLimitedSource and RateLimitedTotal count the messages refused by
	// their source's budget and by the total budget of their class
	// (RateLimitConfig); MsgStats.RateLimited has them by message type.
	RateLimitedSource, RateLimitedTotal uint64
	// RegistrationsAccepted counts EID records registered (new or refreshed).
	RegistrationsAccepted uint64
	// RegistrationsRejected counts EID records refused by site policy.
	RegistrationsRejected uint64
	// RegistrationsExpired counts registrations timed out.
	RegistrationsExpired uint64
	// RegistrationsLimited counts EID records refused by a bound
	// (RegistrationLimits); they are part of RegistrationsRejected.
	RegistrationsLimited uint64
	// RegistrationsReplayed counts EID records refused as replays (their
	// nonce accepted already, from another source); part of
	// RegistrationsRejected. RegistrationsRetransmitted counts records
	// whose nonce was accepted already from the same source: confirmed
	// again, not stored again.
	RegistrationsReplayed, RegistrationsRetransmitted uint64
	// StateFlushes counts the Map-Server's state file transactions
	// (map_server.state_file), StateErrors those that failed,
	// StateWritten the registrations they wrote or deleted.
	StateFlushes, StateErrors, StateWritten uint64
	// MergeTruncated counts merged answers that could not carry every
	// registrant's locators (255 at most per record).
	MergeTruncated uint64
	// Registrations is the number of live per-xTR registrations.
	Registrations int
	// RegisterNotified counts Map-Registers confirmed by a verified Map-Notify.
	RegisterNotified uint64
	// RegisterRetries counts Map-Registers resent for lack of a Map-Notify.
	RegisterRetries uint64
	// RegisterUnconfirmed counts registration rounds that ended with no Map-Notify.
	RegisterUnconfirmed uint64
	// Forwarded counts Map-Requests forwarded to an ETR or a Map-Server.
	Forwarded uint64
	// ProxyReplies counts Map-Replies sent by the Map-Server for a site.
	ProxyReplies uint64
	// GroupNameReplies counts those of them that answered a group-name
	// lookup (draft-ietf-lisp-group-mapping).
	GroupNameReplies uint64
	// NegativeReplies counts negative Map-Replies sent.
	NegativeReplies uint64
	// SMRsSent counts SMRs sent by the ETR.
	SMRsSent uint64
	// RepliesWrongSource counts Map-Replies with an outstanding nonce from
	// an address the request could not be answered from (refused).
	RepliesWrongSource uint64
	// LispSecVerified counts Map-Replies whose LISP-SEC data (RFC 9303)
	// the ITR verified; LispSecRefused those it refused (a PKT-AD or EID-AD
	// that does not verify, an HMAC other than requested, a record outside
	// the EID-AD); LispSecUnsigned the replies without LISP-SEC to a
	// request that asked for it (refused when it is required).
	LispSecVerified, LispSecRefused, LispSecUnsigned uint64
	// LispSecSigned counts the LISP-SEC answers signed: EID-ADs by the
	// Map-Server (forwarded or in its proxy replies), PKT-ADs by the ETR;
	// LispSecUnwrapFailed the LISP-SEC requests whose OTK could not be
	// unwrapped (unknown wrapping, wrong key), answered without LISP-SEC
	// by the Map-Server and not at all by the ETR.
	LispSecSigned, LispSecUnwrapFailed uint64
	// SMRInvoked counts SMR-invoked Map-Requests sent by the ITR.
	SMRInvoked uint64
	// MissesDropped counts miss events refused because the queue was full.
	MissesDropped uint64
	// MissesStale counts misses for a destination that a mapping installed
	// moments before covers: raised by the fast path before the mapping
	// reached it, they send no Map-Request.
	MissesStale uint64
	// Resolutions counts mappings installed after a miss or refresh.
	Resolutions uint64
	// ResolveTimeouts counts resolutions abandoned after MaxTries.
	ResolveTimeouts uint64
	// Retransmits counts Map-Requests resent by the ITR.
	Retransmits uint64
	// ProbesSent counts RLOC-probes sent.
	ProbesSent uint64
	// RLOCDown and RLOCUp count reachability changes found by probing.
	RLOCDown, RLOCUp uint64
	// ResolveLatency is the miss-to-install latency.
	ResolveLatency Histogram
}

// Msg returns the counters of message type t.
func (s Stats) Msg(t wire.MessageType) MsgStats { return s.Msgs[t&15] }

// Add adds o's counters to s: the assembly sums the core's counters and
// those each role keeps into one snapshot.
func (s *Stats) Add(o *Stats) {
	for i := range s.Msgs {
		s.Msgs[i].add(&o.Msgs[i])
	}
	s.Short += o.Short
	s.Oversize += o.Oversize
	s.RateTableFull += o.RateTableFull
	s.RateLimitedSource += o.RateLimitedSource
	s.RepliesWrongSource += o.RepliesWrongSource
	s.LispSecVerified += o.LispSecVerified
	s.LispSecRefused += o.LispSecRefused
	s.LispSecUnsigned += o.LispSecUnsigned
	s.LispSecSigned += o.LispSecSigned
	s.LispSecUnwrapFailed += o.LispSecUnwrapFailed
	s.RateLimitedTotal += o.RateLimitedTotal
	s.RegistrationsAccepted += o.RegistrationsAccepted
	s.RegistrationsRejected += o.RegistrationsRejected
	s.RegistrationsExpired += o.RegistrationsExpired
	s.RegistrationsLimited += o.RegistrationsLimited
	s.RegistrationsReplayed += o.RegistrationsReplayed
	s.RegistrationsRetransmitted += o.RegistrationsRetransmitted
	s.MergeTruncated += o.MergeTruncated
	s.StateFlushes += o.StateFlushes
	s.StateErrors += o.StateErrors
	s.StateWritten += o.StateWritten
	s.Registrations += o.Registrations
	s.RegisterNotified += o.RegisterNotified
	s.RegisterRetries += o.RegisterRetries
	s.RegisterUnconfirmed += o.RegisterUnconfirmed
	s.Forwarded += o.Forwarded
	s.ProxyReplies += o.ProxyReplies
	s.GroupNameReplies += o.GroupNameReplies
	s.NegativeReplies += o.NegativeReplies
	s.SMRsSent += o.SMRsSent
	s.SMRInvoked += o.SMRInvoked
	s.MissesDropped += o.MissesDropped
	s.MissesStale += o.MissesStale
	s.Resolutions += o.Resolutions
	s.ResolveTimeouts += o.ResolveTimeouts
	s.Retransmits += o.Retransmits
	s.ProbesSent += o.ProbesSent
	s.RLOCDown += o.RLOCDown
	s.RLOCUp += o.RLOCUp
	if len(o.ResolveLatency.Counts) > 0 {
		if len(s.ResolveLatency.Counts) == 0 {
			s.ResolveLatency = NewHistogram()
		}
		for i, c := range o.ResolveLatency.Counts {
			s.ResolveLatency.Counts[i] += c
		}
		s.ResolveLatency.Sum += o.ResolveLatency.Sum
		s.ResolveLatency.Count += o.ResolveLatency.Count
	}
}
