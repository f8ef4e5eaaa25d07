package control

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/mcast"
)

// The tests of the assembled engine predate the split of the control plane
// into a core and role packages; these aliases keep their text as it was.
type (
	Config             = slowpath.Config
	RateLimitConfig    = slowpath.RateLimitConfig
	RegistrationLimits = slowpath.RegistrationLimits
	AuthKey            = slowpath.AuthKey
	EIDPrefix          = slowpath.EIDPrefix
	SitePrefix         = slowpath.SitePrefix
	SiteConfig         = slowpath.SiteConfig
	MapServerConfig    = slowpath.MapServerConfig
	RemoteMapServer    = slowpath.RemoteMapServer
	MapResolverConfig  = slowpath.MapResolverConfig
	MapServerPeer      = slowpath.MapServerPeer
	RLOCConfig         = slowpath.RLOCConfig
	Mapping            = slowpath.Mapping
	ETRConfig          = slowpath.ETRConfig
	ITRConfig          = slowpath.ITRConfig
	MulticastConfig    = slowpath.MulticastConfig
	SiteInterface      = slowpath.SiteInterface
	UnderlayConfig     = slowpath.UnderlayConfig
	RTRGroup           = slowpath.RTRGroup
	MissEvent          = fastpath.MissEvent
	Installer          = slowpath.Installer
	Resolved           = slowpath.Resolved
	ResolvedRLOC       = slowpath.ResolvedRLOC
	MulticastInstaller = slowpath.MulticastInstaller
	ResolvedMulticast  = slowpath.ResolvedMulticast
	McastStats         = slowpath.McastStats
	MembershipListener = slowpath.MembershipListener
	ReceiverGroup      = slowpath.ReceiverGroup
	Membership         = slowpath.Membership
	Event              = slowpath.Event
	EventKind          = slowpath.EventKind
	Stats              = slowpath.Stats
	MsgStats           = slowpath.MsgStats
	UnderlayJoiner     = slowpath.UnderlayJoiner
)

const (
	UnderlayHash              = slowpath.UnderlayHash
	UnderlayLookup            = slowpath.UnderlayLookup
	DefaultSuppressHold       = slowpath.DefaultSuppressHold
	EventRegistrationAccepted = slowpath.EventRegistrationAccepted
	EventRegistrationRejected = slowpath.EventRegistrationRejected
	EventRegistrationExpired  = slowpath.EventRegistrationExpired
)

var (
	ErrClosed              = slowpath.ErrClosed
	newNonce               = slowpath.NewNonce
	sgRecord               = slowpath.SGRecord
	addrEqual              = slowpath.AddrEqual
	authDataOff            = slowpath.AuthDataOff
	newSGKey               = slowpath.NewSGKey
	OpenMembershipListener = mcast.OpenMembershipListener
	NewSocketJoiner        = mcast.NewSocketJoiner
)

// do runs f on the engine's event loop.
func (e *Engine) do(f func()) error { return e.c.Do(f) }

// inject hands b from src to the engine's dispatch and waits for it.
func inject(t *testing.T, e *Engine, src netip.AddrPort, b []byte) {
	t.Helper()
	if err := e.Core().Inject(src, b); err != nil {
		t.Fatal(err)
	}
}

// slowpathOptions are the core's options with the fake clock clk.
func slowpathOptions(clk *fakeClock) slowpath.Options { return slowpath.Options{Clock: clk.Now} }
