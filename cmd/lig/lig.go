package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Query is one lig lookup.
type Query struct {
	// MR is the Map-Resolver (port 4342 unless given).
	MR netip.AddrPort
	// EID is the EID prefix asked for; a plain address is a full-length
	// prefix.
	EID netip.Prefix
	// IID is the instance-ID; with UseIID (or a non-zero IID) the EID is
	// sent in an instance-ID LCAF (RFC 8060 §4.1).
	IID    uint32
	UseIID bool
	// Source is the local address and port; an invalid or unspecified
	// address means the one the kernel picks to reach MR, port 0 an
	// ephemeral port. The address is the Map-Request's ITR-RLOC.
	Source netip.AddrPort
	// Tries is how many Map-Requests are sent at most (each with a new
	// nonce), Timeout how long each waits.
	Tries   int
	Timeout time.Duration
	// DDT walks a Delegated Database Tree from the root MR instead of
	// asking a Map-Resolver (TraceDDT), following at most MaxHops
	// referrals.
	DDT     bool
	MaxHops int
	// ALTPath is the Map-Resolver's management socket: after the reply,
	// lig shows the ALT route the request was sent by (ALTPath).
	ALTPath string
}

// Result is the answer to a Query.
type Result struct {
	// From is the sender of the Map-Reply (the MR, a Map-Server acting as
	// proxy, or the ETR).
	From netip.AddrPort
	// ITRRLOC is the local address and port the request went from.
	ITRRLOC netip.AddrPort
	// RTT is the time from sending the answered Map-Request to the reply.
	RTT time.Duration
	// Sent counts the Map-Requests sent, Ignored the datagrams received
	// that were not the awaited Map-Reply (other types, unknown nonces,
	// malformed).
	Sent, Ignored int
	// Reply is the Map-Reply.
	Reply wire.MapReply
}

// ErrNoReply is returned when no Map-Reply arrived after every try.
var ErrNoReply = errors.New("no Map-Reply")

// Lookup sends Map-Requests for q.EID, each inside an Encapsulated Control
// Message to q.MR (RFC 9301 §5.8, §6.1), and returns the first Map-Reply
// that echoes the nonce of one of them (RFC 9301 §5.4).
func Lookup(ctx context.Context, q Query) (*Result, error) {
	if !q.MR.IsValid() {
		return nil, errors.New("lig: no Map-Resolver address")
	}
	if !q.EID.IsValid() {
		return nil, errors.New("lig: no EID")
	}
	if q.Tries < 1 {
		q.Tries = 1
	}
	if q.Timeout <= 0 {
		q.Timeout = 2 * time.Second
	}
	mr := netip.AddrPortFrom(q.MR.Addr().Unmap(), q.MR.Port())
	conn, self, err := listen(q, mr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res := &Result{ITRRLOC: self}
	req, ecm := newRequest(q, self)

	sentAt := map[wire.Nonce]time.Time{}
	var out, in []byte
	in = make([]byte, 65536)
	var reply wire.MapReply
	for try := 0; try < q.Tries; try++ {
		if out, err = sendRequest(conn, mr, &req, &ecm, out); err != nil {
			return nil, err
		}
		sentAt[req.Nonce] = time.Now()
		res.Sent++
		deadline := time.Now().Add(q.Timeout)
		for {
			n, from, ok, err := recv(ctx, conn, deadline, in)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			t, err := wire.PeekType(in[:n])
			if err != nil || t != wire.TypeMapReply || reply.Parse(in[:n]) != nil {
				res.Ignored++
				continue
			}
			at, ok := sentAt[reply.Nonce]
			if !ok {
				res.Ignored++
				continue
			}
			res.RTT = time.Since(at)
			res.From = from
			res.Reply = reply
			return res, nil
		}
	}
	return res, fmt.Errorf("lig: %w from %v for %v after %d Map-Requests (%v each)", ErrNoReply, mr, q.EID, res.Sent, q.Timeout)
}

// listen opens lig's socket: on q.Source, or on the address the kernel
// picks to reach dst; self is its address and port (the ITR-RLOC).
func listen(q Query, dst netip.AddrPort) (conn *net.UDPConn, self netip.AddrPort, err error) {
	local := q.Source.Addr()
	if !local.IsValid() || local.IsUnspecified() {
		if local, err = localAddr(dst); err != nil {
			return nil, self, err
		}
	}
	conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, q.Source.Port())))
	if err != nil {
		return nil, self, fmt.Errorf("lig: %w", err)
	}
	self = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return conn, netip.AddrPortFrom(self.Addr().Unmap(), self.Port()), nil
}

// newRequest builds q's Map-Request (nonce unset) with self as ITR-RLOC,
// and the ECM it travels in (RFC 9301 §5.8; Message unset).
func newRequest(q Query, self netip.AddrPort) (wire.MapRequest, wire.ECM) {
	eid := wire.IPAddress(q.EID.Addr())
	if q.UseIID || q.IID != 0 {
		eid = wire.IIDAddress(q.IID, q.EID.Addr())
	}
	req := wire.MapRequest{
		ITRRLOCs: []wire.Address{wire.IPAddress(self.Addr())},
		Records:  []wire.EIDRecord{{MaskLen: uint8(q.EID.Bits()), EID: eid}},
	}
	// The inner header goes from the ITR-RLOC to the EID looked up (RFC
	// 9301 §5.8); both must be of one family, so with an EID of the other
	// family the inner source is the unspecified address.
	innerSrc := self.Addr()
	if innerSrc.Is4() != q.EID.Addr().Is4() {
		innerSrc = netip.IPv6Unspecified()
		if q.EID.Addr().Is4() {
			innerSrc = netip.IPv4Unspecified()
		}
	}
	return req, wire.ECM{Src: innerSrc, Dst: q.EID.Addr(), SrcPort: self.Port(), DstPort: wire.ControlPort, TTL: 64}
}

// sendRequest sends req with a fresh nonce in ecm to dst; out is reused
// for the encoded request and returned.
func sendRequest(conn *net.UDPConn, dst netip.AddrPort, req *wire.MapRequest, ecm *wire.ECM, out []byte) ([]byte, error) {
	if _, err := rand.Read(req.Nonce[:]); err != nil {
		return out, fmt.Errorf("lig: nonce: %w", err)
	}
	msg, err := req.Append(out[:0])
	if err != nil {
		return out, fmt.Errorf("lig: Map-Request: %w", err)
	}
	ecm.Message = msg
	pkt, err := ecm.Append(nil)
	if err != nil {
		return msg, fmt.Errorf("lig: ECM: %w", err)
	}
	if _, err := conn.WriteToUDPAddrPort(pkt, dst); err != nil {
		return msg, fmt.Errorf("lig: send to %v: %w", dst, err)
	}
	return msg, nil
}

// recv reads the next datagram into in before deadline (or ctx's),
// waking at least every 100 ms to notice a cancelled ctx; ok is false
// when the deadline passed.
func recv(ctx context.Context, conn *net.UDPConn, deadline time.Time, in []byte) (n int, from netip.AddrPort, ok bool, err error) {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, from, false, fmt.Errorf("lig: %w", err)
		}
		wake := time.Now().Add(100 * time.Millisecond)
		if deadline.Before(wake) {
			wake = deadline
		}
		if err := conn.SetReadDeadline(wake); err != nil {
			return 0, from, false, fmt.Errorf("lig: %w", err)
		}
		n, from, err = conn.ReadFromUDPAddrPort(in)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Now().Before(deadline) {
					continue
				}
				return 0, from, false, nil
			}
			return 0, from, false, fmt.Errorf("lig: %w", err)
		}
		return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true, nil
	}
}

// localAddr returns the address the kernel would send from to reach dst.
func localAddr(dst netip.AddrPort) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lig: no route to %v: %w", dst, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// Print writes the query and its result the way lig users know it: the
// request line, the reply's sender and round-trip time, then each mapping
// record with its locators.
func Print(w io.Writer, q Query, r *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Send Map-Request from %v to %v for %s ...\n", r.ITRRLOC, q.MR, eidString(q.IID, q.EID))
	fmt.Fprintf(&b, "Received Map-Reply from %v with rtt %.6f secs (%d request(s) sent)\n",
		r.From, r.RTT.Seconds(), r.Sent)
	if len(r.Reply.Records) == 0 {
		b.WriteString("\nMap-Reply without mapping records\n")
	}
	for i := range r.Reply.Records {
		rec := &r.Reply.Records[i]
		b.WriteString("\n")
		iid, p, ok := rec.Prefix()
		name := fmt.Sprintf("%v/%d", rec.EID, rec.MaskLen)
		if ok {
			name = eidString(iid, p)
		}
		auth := "non-authoritative"
		if rec.Authoritative {
			auth = "authoritative"
		}
		fmt.Fprintf(&b, "Mapping entry for EID %s, record ttl: %s, action: %v, %s, map-version %d, %d locator(s)\n",
			name, ttlString(rec.TTL), rec.Action, auth, rec.MapVersion, len(rec.Locators))
		if len(rec.Locators) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  Locator\tState\tPriority/Weight\tMPriority/MWeight\tFlags")
		for j := range rec.Locators {
			l := &rec.Locators[j]
			state := "down"
			if l.Reachable {
				state = "up"
			}
			var flags []string
			if l.Local {
				flags = append(flags, "local")
			}
			if l.Probed {
				flags = append(flags, "probed")
			}
			fmt.Fprintf(tw, "  %v\t%s\t%d/%d\t%d/%d\t%s\n", l.Address, state, l.Priority, l.Weight,
				l.MPriority, l.MWeight, strings.Join(flags, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func eidString(iid uint32, p netip.Prefix) string {
	return fmt.Sprintf("[%d]%v", iid, p)
}

// ttlString formats a record TTL (minutes, RFC 9301 §5.4).
func ttlString(ttl uint32) string {
	switch ttl {
	case wire.TTLReceiverDecides:
		return "receiver decides"
	case 0:
		return "0 (remove)"
	}
	return fmt.Sprintf("%d min", ttl)
}
