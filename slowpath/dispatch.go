package slowpath

import (
	"net/netip"

	"github.com/rloc-router/rloc/wire"
)

// Route names what a handler is registered for: a message type and, for
// Map-Requests, what kind of request it is, or for a shared extension
// message (type 15) its RFC 8113 §3 sub-type.
type Route struct {
	// Type is the message type (RFC 9301 §5.1).
	Type wire.MessageType
	// Sub is the RequestKind of a Map-Request, the sub-type of a shared
	// extension message (RFC 8113 §3), 0 for other types.
	Sub uint16
}

// RequestKind sorts received Map-Requests for dispatch (RFC 9301 §5.2).
type RequestKind = uint16

// Kinds of Map-Request.
const (
	// RequestPlain is a Map-Request sent without encapsulation that is
	// neither a probe nor an SMR (lig-like tools asking a Map-Server or an
	// ETR directly).
	RequestPlain RequestKind = iota
	// RequestProbe is an RLOC-probe: the P bit (RFC 9301 §7.1).
	RequestProbe
	// RequestSMR is a solicit-Map-Request: S bit set, s bit clear
	// (RFC 9301 §6.6.2).
	RequestSMR
)

// Routes of the handlers roles register.
var (
	// RouteMapRequest: a plain Map-Request.
	RouteMapRequest = Route{Type: wire.TypeMapRequest, Sub: RequestPlain}
	// RouteProbe: an RLOC-probe.
	RouteProbe = Route{Type: wire.TypeMapRequest, Sub: RequestProbe}
	// RouteSMR: a solicit-Map-Request.
	RouteSMR = Route{Type: wire.TypeMapRequest, Sub: RequestSMR}
	// RouteECM: a Map-Request in an Encapsulated Control Message
	// (RFC 9301 §5.8), for a Map-Resolver, a Map-Server or an ETR.
	RouteECM = Route{Type: wire.TypeECM}
	// RouteMapReply, RouteMapRegister, RouteMapNotify and
	// RouteMapNotifyAck: those messages (RFC 9301 §5.4, §5.6, §5.7).
	RouteMapReply     = Route{Type: wire.TypeMapReply}
	RouteMapRegister  = Route{Type: wire.TypeMapRegister}
	RouteMapNotify    = Route{Type: wire.TypeMapNotify}
	RouteMapNotifyAck = Route{Type: wire.TypeMapNotifyAck}
)

// SharedRoute is the route of the shared extension messages of sub-type st
// (type 15, RFC 8113 §3).
func SharedRoute(st wire.SharedSubType) Route {
	return Route{Type: wire.TypeSharedExtension, Sub: uint16(st)}
}

// Handler handles one received message on the event loop. It reports
// whether it took the message; the core offers it to the next handler of
// the route otherwise, and counts it as ignored when no handler took it.
// A handler that takes a message counts its outcome itself.
type Handler func(m *Msg) bool

// routes holds the handlers of every route, in registration order.
type routes map[Route][]Handler

// Handle registers h for r. Handlers of one route are asked in
// registration order; register before Start.
func (c *Core) Handle(r Route, h Handler) {
	if c.routes == nil {
		c.routes = routes{}
	}
	c.routes[r] = append(c.routes[r], h)
}

// Handles reports whether some role registered for r.
func (c *Core) Handles(r Route) bool { return len(c.routes[r]) > 0 }

// Msg is one received control message as handlers see it. Each message is
// decoded once per arrival: the core decodes Map-Requests (plain and in an
// ECM) to sort them; the other types are decoded by the first handler that
// asks (MapRegister, MapReply, MapNotify) and every later handler gets the
// same decoded struct. A Msg and what it points to are valid only during
// the handler call.
type Msg struct {
	// Src is the datagram's source.
	Src netip.AddrPort
	// Raw is the message: the datagram, or for an ECM its inner message.
	Raw []byte
	// Port is where an answer goes (RFC 9301 §5.2): the datagram's source
	// port, or for an ECM the inner UDP source port.
	Port uint16
	// ECM is the encapsulation a Map-Request arrived in, nil for a plain
	// one.
	ECM *wire.ECM
	// Request is the decoded Map-Request (routes of type Map-Request and
	// RouteECM).
	Request *wire.MapRequest

	c    *Core
	s    *socket
	oob  []byte
	done bool // decoded (successfully or not)
	err  error
	reg  wire.MapRegister
	rep  wire.MapReply
	note wire.MapNotify
}

// Local returns the address the datagram was sent to, from its control
// message, or the socket's address when it carries none (RLOC-probe
// replies mark the probed locator with it, RFC 9301 §7.1).
func (m *Msg) Local() netip.Addr {
	if m.s == nil {
		return netip.Addr{}
	}
	return localDst(m.s, m.oob, m.s.local.Addr())
}

// Nonce returns the message's nonce (bytes 4..11 of every type that has
// one, RFC 9301 §5), without decoding it.
func (m *Msg) Nonce() (wire.Nonce, bool) { return PeekNonce(m.Raw) }

// decode runs parse once per message and counts it.
func (m *Msg) decode(t wire.MessageType, parse func([]byte) error) error {
	if !m.done {
		m.done = true
		m.c.stats.Msgs[t].Parsed++
		m.err = parse(m.Raw)
	}
	return m.err
}

// MapRegister decodes the message as a Map-Register (RFC 9301 §5.6), once.
func (m *Msg) MapRegister() (*wire.MapRegister, error) {
	return &m.reg, m.decode(wire.TypeMapRegister, m.reg.Parse)
}

// MapReply decodes the message as a Map-Reply (RFC 9301 §5.4), once.
func (m *Msg) MapReply() (*wire.MapReply, error) {
	return &m.rep, m.decode(wire.TypeMapReply, m.rep.Parse)
}

// MapNotify decodes the message as a Map-Notify (RFC 9301 §5.7), once.
func (m *Msg) MapNotify() (*wire.MapNotify, error) {
	return &m.note, m.decode(wire.TypeMapNotify, m.note.Parse)
}

// handle dispatches one datagram by message type. It never panics on any
// input: parsers return errors, which are counted.
func (c *Core) handle(s *socket, src netip.AddrPort, b []byte, oob []byte) {
	t, err := wire.PeekType(b)
	if err != nil {
		c.stats.Short++
		return
	}
	ms := &c.stats.Msgs[t]
	if !c.rl.allow(src, classOf(t), c.now) {
		ms.RateLimited++
		return
	}
	ms.Received++
	m := &c.msg // reused: its decoded structs keep their storage
	m.Src, m.Raw, m.Port, m.ECM, m.Request = src, b, src.Port(), nil, nil
	m.c, m.s, m.oob, m.done, m.err = c, s, oob, false, nil
	switch t {
	case wire.TypeMapRequest:
		c.onMapRequest(m)
	case wire.TypeECM:
		c.onECM(m)
	case wire.TypeSharedExtension:
		st, err := wire.PeekSharedSubType(b)
		if err != nil {
			ms.BadParse++
			return
		}
		c.dispatch(SharedRoute(st), m, ms)
	default:
		c.dispatch(Route{Type: t}, m, ms)
	}
}

// dispatch offers m to the handlers of r; st counts it as ignored when
// none takes it.
func (c *Core) dispatch(r Route, m *Msg, st *MsgStats) {
	for _, h := range c.routes[r] {
		if h(m) {
			return
		}
	}
	st.Ignored++
}

// onMapRequest decodes a Map-Request received without ECM and dispatches
// it by kind: an RLOC-probe, an SMR, or a plain request.
func (c *Core) onMapRequest(m *Msg) {
	st := &c.stats.Msgs[wire.TypeMapRequest]
	st.Parsed++
	if err := c.req.Parse(m.Raw); err != nil {
		st.BadParse++
		return
	}
	m.Request = &c.req
	r := RouteMapRequest
	switch {
	case c.req.Probe:
		r = RouteProbe
	case c.req.SMR && !c.req.SMRInvoked:
		r = RouteSMR
	}
	c.dispatch(r, m, st)
}

// DispatchECM handles b, an Encapsulated Control Message that a role
// found inside the message m (a signed envelope it unwrapped and checked,
// as the interconnect's Map-Invoke), as if it had arrived on its own from
// m.Src: its Map-Request goes to the RouteECM handlers. Call it from m's
// handler only; m then describes the ECM.
func (c *Core) DispatchECM(m *Msg, b []byte) {
	c.stats.Msgs[wire.TypeECM].Received++
	m.Raw, m.Port, m.ECM, m.Request = b, m.Src.Port(), nil, nil
	m.done, m.err = false, nil
	c.onECM(m)
}

// onECM decodes an Encapsulated Control Message and the Map-Request in it
// and dispatches it (RFC 9301 §5.8); other inner messages are ignored.
func (c *Core) onECM(m *Msg) {
	st := &c.stats.Msgs[wire.TypeECM]
	st.Parsed++
	if err := c.ecm.Parse(m.Raw); err != nil {
		st.BadParse++
		return
	}
	if t, err := wire.PeekType(c.ecm.Message); err != nil || t != wire.TypeMapRequest {
		st.Ignored++
		return
	}
	rst := &c.stats.Msgs[wire.TypeMapRequest]
	rst.Received++
	rst.Parsed++
	if err := c.req.Parse(c.ecm.Message); err != nil {
		rst.BadParse++
		return
	}
	m.Raw, m.Port, m.ECM, m.Request = c.ecm.Message, c.ecm.SrcPort, &c.ecm, &c.req
	c.dispatch(RouteECM, m, rst)
}
