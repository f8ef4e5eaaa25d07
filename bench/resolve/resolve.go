// Package resolve measures mapping resolution as an ITR sees it: the time
// from sending a Map-Request, in an Encapsulated Control Message to a
// Map-Resolver (RFC 9301 §5.8, as an ITR or lig does), to the Map-Reply
// that echoes its nonce (RFC 9301 §5.4), whoever sends it (the ETR, a
// proxying Map-Server, or the Map-Resolver with a negative reply).
//
// A Client is one UDP socket; open it inside the namespace of the node that
// plays the ITR (lab.Node(..).Do) and it stays there. Measure runs a series
// of resolutions and returns the samples; Summarize gives the percentiles.
// The DDT lab's benchmark (e2e/ddt_bench_test.go) uses it; other mapping
// systems measured on the same lab use the same code.
package resolve

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Client sends Map-Requests to one Map-Resolver from one UDP socket whose
// address is the requests' ITR-RLOC.
type Client struct {
	conn *net.UDPConn
	mr   netip.AddrPort
	self netip.AddrPort
	in   []byte
}

// Dial opens a Client for the Map-Resolver mr (port 4342 when it has
// none) on local, in the calling thread's network namespace: an invalid or
// unspecified local address means the one the kernel picks to reach mr,
// port 0 an ephemeral port. The local address is the requests' ITR-RLOC.
//
// Any port works through a DDT Map-Resolver too: it keeps the ITR's inner
// source port in the ECMs it sends down the tree (RFC 8111 §7.3), so the
// ETR answers the client's own port.
func Dial(mr, local netip.AddrPort) (*Client, error) {
	if !mr.IsValid() {
		return nil, errors.New("resolve: no Map-Resolver address")
	}
	if mr.Port() == 0 {
		mr = netip.AddrPortFrom(mr.Addr(), wire.ControlPort)
	}
	mr = netip.AddrPortFrom(mr.Addr().Unmap(), mr.Port())
	la := local.Addr()
	if !la.IsValid() || la.IsUnspecified() {
		probe, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(mr))
		if err != nil {
			return nil, fmt.Errorf("resolve: no route to %v: %w", mr, err)
		}
		la = probe.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		probe.Close()
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(la, local.Port())))
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return &Client{conn: conn, mr: mr, self: netip.AddrPortFrom(self.Addr().Unmap(), self.Port()),
		in: make([]byte, 65536)}, nil
}

// Addr returns the client's address and port (the ITR-RLOC it sends).
func (c *Client) Addr() netip.AddrPort { return c.self }

// Close closes the socket.
func (c *Client) Close() error { return c.conn.Close() }

// Reply is one answered resolution.
type Reply struct {
	// RTT is the time from sending the Map-Request to receiving the reply.
	RTT time.Duration
	// From is the reply's sender.
	From netip.AddrPort
	// Record is the reply's first mapping record (RFC 9301 §5.4).
	Record wire.Record
	// Ignored counts datagrams received meanwhile that were not the reply
	// (other nonces, such as late answers to earlier requests).
	Ignored int
}

// Negative reports whether the reply is a negative Map-Reply (no locators).
func (r *Reply) Negative() bool { return len(r.Record.Locators) == 0 }

// ErrNoReply is returned by Resolve when no Map-Reply came in time.
var ErrNoReply = errors.New("resolve: no Map-Reply")

// Resolve sends one Map-Request for eid in instance-ID iid (an instance-ID
// LCAF unless iid is 0, RFC 8060 §4.1) with a fresh random nonce and waits
// at most timeout for the Map-Reply with that nonce.
func (c *Client) Resolve(iid uint32, eid netip.Addr, timeout time.Duration) (Reply, error) {
	var r Reply
	eid = eid.Unmap()
	addr := wire.IPAddress(eid)
	if iid != 0 {
		addr = wire.IIDAddress(iid, eid)
	}
	req := wire.MapRequest{ITRRLOCs: []wire.Address{wire.IPAddress(c.self.Addr())},
		Records: []wire.EIDRecord{{MaskLen: uint8(eid.BitLen()), EID: addr}}}
	if _, err := rand.Read(req.Nonce[:]); err != nil {
		return r, fmt.Errorf("resolve: nonce: %w", err)
	}
	msg, err := req.Append(nil)
	if err != nil {
		return r, fmt.Errorf("resolve: Map-Request: %w", err)
	}
	// The inner header goes from the ITR-RLOC to the EID (RFC 9301 §5.8),
	// both of one family.
	src := c.self.Addr()
	if src.Is4() != eid.Is4() {
		src = netip.IPv6Unspecified()
		if eid.Is4() {
			src = netip.IPv4Unspecified()
		}
	}
	ecm := wire.ECM{Src: src, Dst: eid, SrcPort: c.self.Port(), DstPort: wire.ControlPort, TTL: 64, Message: msg}
	pkt, err := ecm.Append(nil)
	if err != nil {
		return r, fmt.Errorf("resolve: ECM: %w", err)
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return r, fmt.Errorf("resolve: %w", err)
	}
	start := time.Now()
	if _, err := c.conn.WriteToUDPAddrPort(pkt, c.mr); err != nil {
		return r, fmt.Errorf("resolve: send to %v: %w", c.mr, err)
	}
	var rep wire.MapReply
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(c.in)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return r, fmt.Errorf("%w for [%d]%v from %v within %v", ErrNoReply, iid, eid, c.mr, timeout)
			}
			return r, fmt.Errorf("resolve: %w", err)
		}
		at := time.Now()
		if t, err := wire.PeekType(c.in[:n]); err != nil || t != wire.TypeMapReply ||
			rep.Parse(c.in[:n]) != nil || rep.Nonce != req.Nonce || len(rep.Records) == 0 {
			r.Ignored++
			continue
		}
		r.RTT, r.From, r.Record = at.Sub(start), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), rep.Records[0]
		return r, nil
	}
}
