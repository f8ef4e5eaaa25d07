package lab

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingInterval spaces the echo requests of Ping.
const pingInterval = 50 * time.Millisecond

// Ping sends count ICMP (or ICMPv6) echo requests from inside node from to
// the address to, 50 ms apart, and returns how many distinct replies
// arrived before timeout elapsed after the last request. It needs no ping
// binary: it uses a raw socket opened inside the node.
func (l *Lab) Ping(from string, to netip.Addr, count int, timeout time.Duration) (int, error) {
	ns := l.nodes[from]
	if ns == nil {
		return 0, fmt.Errorf("lab: ping: no node %q", from)
	}
	if count < 1 || count > 10000 {
		return 0, fmt.Errorf("lab: ping: count %d out of range", count)
	}
	to = to.Unmap()
	network, laddr := "ip4:icmp", "0.0.0.0"
	var reqType, repType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if to.Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
		reqType, repType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
		proto = 58
	}
	var c *icmp.PacketConn
	if err := ns.Do(func() (err error) {
		c, err = icmp.ListenPacket(network, laddr)
		return err
	}); err != nil {
		return 0, fmt.Errorf("lab: ping from %s: %w", from, err)
	}
	defer c.Close()
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := int(binary.BigEndian.Uint16(idb[:]))
	dst := &net.IPAddr{IP: to.AsSlice(), Zone: to.Zone()}
	got := make([]bool, count)
	received := 0
	errc := make(chan error, 1)
	go func() {
		for seq := range count {
			m := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("rloc-lab")}}
			b, err := m.Marshal(nil)
			if err == nil {
				_, err = c.WriteTo(b, dst)
			}
			if err != nil {
				errc <- err
				return
			}
			if seq < count-1 {
				time.Sleep(pingInterval)
			}
		}
		errc <- nil
	}()
	deadline := time.Now().Add(time.Duration(count-1)*pingInterval + timeout)
	buf := make([]byte, 1500)
	var sendErr error
	sendDone := false
	for received < count {
		if !sendDone {
			select {
			case sendErr = <-errc:
				sendDone = true
				if sendErr != nil {
					return received, fmt.Errorf("lab: ping %v from %s: %w", to, from, sendErr)
				}
			default:
			}
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return received, err
		}
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return received, fmt.Errorf("lab: ping %v from %s: %w", to, from, err)
		}
		pa, ok := peer.(*net.IPAddr)
		if !ok {
			continue
		}
		if a, ok := netip.AddrFromSlice(pa.IP); !ok || a.Unmap() != to.WithZone("") {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != repType {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != id || e.Seq < 0 || e.Seq >= count || got[e.Seq] {
			continue
		}
		got[e.Seq] = true
		received++
	}
	if !sendDone {
		// Unblock nothing: the sender finishes by itself within
		// count*pingInterval; wait so the socket is not closed under it.
		if err := <-errc; err != nil && received < count {
			return received, fmt.Errorf("lab: ping %v from %s: %w", to, from, err)
		}
	}
	return received, nil
}
