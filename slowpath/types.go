package slowpath

import (
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// The concepts that cross the control plane's packages: what the fast path
// installs (Installer, MulticastInstaller) and observe (MembershipListener),
// declared once here. What the fast path reports, fastpath.MissEvent, is
// declared where it is produced.

// ReceiverDecidesTTL is how long a mapping whose record TTL says "the
// receiver decides" (RFC 9301 §5.4) is kept.
const ReceiverDecidesTTL = 24 * time.Hour

// ResolvedRLOC is one locator of a resolved mapping.
type ResolvedRLOC struct {
	// Addr is the RLOC.
	Addr netip.Addr
	// Priority, Weight, MPriority and MWeight are the record's values
	// (RFC 9301 §5.4).
	Priority, Weight, MPriority, MWeight uint8
	// Reachable is the R bit of the locator (RFC 9301 §5.4).
	Reachable bool
}

// Resolved is a positive mapping learned from a Map-Reply.
type Resolved struct {
	EIDPrefix
	// TTL is the record TTL; "receiver decides" becomes 24 hours.
	TTL time.Duration
	// Authoritative is the record's A bit (RFC 9301 §5.4).
	Authoritative bool
	// MapVersion is the record's map-version (RFC 9301 §5.4).
	MapVersion uint16
	// RLOCs are the locators that are plain IP addresses.
	RLOCs []ResolvedRLOC
	// Record is the whole record, LCAF locators (RLE, ELP) included. It is
	// only valid during the Install call.
	Record *wire.Record
	// Solicited marks a copy from a peer ITR's map-cache (Map-Solicit-
	// Response, docs/solicit.md) rather than a mapping-system answer.
	Solicited bool
}

// Installer receives what the ITR learns; the daemon wires it to the
// map-cache (cache.Apply) and the fast path's hold queues. Its methods are
// called from the engine goroutine and must not block for long.
type Installer interface {
	// Install installs or replaces a positive mapping.
	Install(m *Resolved)
	// InstallNegative installs a negative mapping with its action
	// (RFC 9301 §5.4).
	InstallNegative(p EIDPrefix, ttl time.Duration, action wire.Action)
	// SetRLOCReachable marks rloc of the mapping for p up or down, as
	// RLOC-probing found it.
	SetRLOCReachable(p EIDPrefix, rloc netip.Addr, up bool)
	// Active reports whether the mapping for p carried traffic recently, so
	// that it is worth refreshing before its TTL runs out.
	Active(p EIDPrefix) bool
}

// ResolvedMulticast is an (S,G) or (*,G) mapping with its replication list,
// as the ITR learns it from a Map-Reply or Map-Notify, or as an RTR builds
// it from the children that joined it.
type ResolvedMulticast struct {
	// IID is the instance-ID.
	IID uint32
	// Source is the S-EID prefix; mask length 0 for (*,G).
	Source netip.Prefix
	// Group is the G-EID prefix.
	Group netip.Prefix
	// TTL is how long the mapping lives.
	TTL time.Duration
	// RLE is the replication list (RFC 8060 §4.9), validated: at most
	// MaxRLE entries of unicast RLOCs or usable underlay groups, no
	// duplicate, no loop through this router. Empty means no receivers
	// (the fast path drops the group's packets).
	RLE []replicate.Entry
}

// MulticastInstaller receives (S,G) mappings; the daemon writes them into
// the map-cache (cache.MulticastKey) where fastpath/mcast picks them up.
// The Engine's Installer must implement it when the engine is an ITR or
// an RTR with multicast configured.
type MulticastInstaller interface {
	// InstallMulticast installs or replaces an (S,G)/(*,G) mapping.
	InstallMulticast(m *ResolvedMulticast)
	// RemoveMulticast removes it.
	RemoveMulticast(iid uint32, src, group netip.Prefix)
}

// McastStats counts multicast control events.
type McastStats struct {
	// Joins and Leaves are receiver (S,G)/(*,G) memberships learned and
	// lost (leave or timeout) on the site interfaces.
	Joins, Leaves uint64
	// BadReports are IGMP/MLD messages that did not parse.
	BadReports uint64
	// LocalGroups are report records for link-local or interface-local
	// groups, which are not registered (RFC 5771 §4, RFC 4291 §2.7).
	LocalGroups uint64
	// Registers and Withdraws are (S,G) Map-Registers sent with the RLE
	// entry and with TTL 0.
	Registers, Withdraws uint64
	// NotifiesSent, NotifyRetries and NotifyAcked count the Map-Server's
	// unsolicited Map-Notifies; NotifyGaveUp those never acknowledged.
	NotifiesSent, NotifyRetries, NotifyAcked, NotifyGaveUp uint64
	// Installs are (S,G) mappings given to the MulticastInstaller.
	Installs uint64
	// RLERefused are RLEs refused (too large, malformed, loops).
	RLERefused uint64
	// TreeJoins, TreeLeaves and Reparents count tree signalling;
	// ParentFailures the parents found dead by probing.
	TreeJoins, TreeLeaves, Reparents, ParentFailures uint64
	// ProbesSuppressed are (S,G) RLOC-probes left unanswered on the U-RLOC
	// (duplicate suppression).
	ProbesSuppressed uint64
	// URLOCsDown are U-RLOCs the ITR stopped replicating to because they
	// stopped answering (S,G) probes while the RLE has an underlay group.
	URLOCsDown uint64
}

// MembershipListener delivers the IGMP and MLD messages heard on one site
// interface and sends queries there. The raw-socket implementation is
// OpenMembershipListener; tests inject reports through their own.
type MembershipListener interface {
	// Interface is the site interface listened on, with its instance-ID.
	Interface() SiteInterface
	// Read blocks for the next IGMP message (mld false: the IPv4 payload)
	// or MLD message (mld true: the ICMPv6 message), with the packet's IP
	// source and destination. It returns an error once closed.
	Read(b []byte) (n int, src, dst netip.Addr, mld bool, err error)
	// Query sends a membership query on the interface: a general query
	// (IGMP and MLD) when group is invalid, else a group-specific one.
	Query(group netip.Addr) error
	// Close makes Read return.
	Close() error
}

// ReceiverGroup is an (S,G), or with Source invalid a (*,G), that has
// receivers on a site interface of instance-ID IID.
type ReceiverGroup struct {
	IID    uint32
	Source netip.Addr
	Group  netip.Addr
}

// Membership is one receiver membership learned on a site interface.
type Membership struct {
	// Interface is the site interface.
	Interface string
	// IID is its instance-ID.
	IID uint32
	// Source is the source, invalid for (*,G).
	Source netip.Addr
	// Group is the group.
	Group netip.Addr
	// Expires is when it times out without a report.
	Expires time.Time
}

// DefaultSuppressHold is UnderlayConfig.SuppressHold when unset: three of
// the fast path's once-a-second renewals, so that one or two late ones do
// not end suppression while the G-RLOC traffic lasts, and short enough that
// ITRs resume unicast copies within a few seconds (plus their probe misses)
// when it stops.
const DefaultSuppressHold = 3 * time.Second
