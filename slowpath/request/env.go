package request

import (
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Clock is the control plane's time and timer service. The core implements
// it over its timer heap; tests use reqtest.Clock. It is used from one
// goroutine only: the callbacks run on the caller's event loop, never
// concurrently with other calls.
type Clock interface {
	// Now returns the current time of the event loop.
	Now() time.Time
	// Schedule arranges for fn to run at or after at and returns a timer
	// that moves or cancels it.
	Schedule(at time.Time, fn func(now time.Time)) Timer
}

// Timer is one scheduled callback of a Clock.
type Timer interface {
	// Reset moves the timer to at, scheduling it again if it already fired
	// or was stopped. It must not allocate.
	Reset(at time.Time)
	// Stop cancels the timer; a no-op when it already fired or was stopped.
	Stop()
}

// Sender sends control messages on the core's sockets.
type Sender interface {
	// Send sends msg, a control message of type t, to dst. msg is only
	// valid during the call.
	Send(dst netip.AddrPort, msg []byte, t wire.MessageType) error
	// LocalPort returns the UDP port messages to dst leave from, the
	// inner source port of an Encapsulated Control Message (RFC 9301
	// §5.8); false when no socket reaches dst's address family.
	LocalPort(dst netip.AddrPort) (uint16, bool)
}
