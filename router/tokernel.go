package router

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/slowpath"
)

// toKernel hands IP packets to the kernel through raw sockets (header
// included), for next hops whose link-layer address is not known yet: the
// kernel routes the packet, resolves the neighbour by ARP/ND and sends it.
// It is the fast path's rare path (fastpath.Config.ToKernel); sends never
// block.
type toKernel struct {
	fd4, fd6 int
}

func newToKernel() (*toKernel, error) {
	fd4, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, err
	}
	// IPPROTO_RAW implies IP_HDRINCL (and IPV6_HDRINCL for AF_INET6).
	fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		unix.Close(fd4)
		return nil, err
	}
	return &toKernel{fd4: fd4, fd6: fd6}, nil
}

// send passes pkt (starting with its IP header) to the kernel.
func (k *toKernel) send(pkt []byte) bool {
	if len(pkt) < 20 {
		return false
	}
	switch pkt[0] >> 4 {
	case 4:
		sa := unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])}
		return unix.Sendto(k.fd4, pkt, unix.MSG_DONTWAIT, &sa) == nil
	case 6:
		if len(pkt) < 40 {
			return false
		}
		sa := unix.SockaddrInet6{Addr: [16]byte(pkt[24:40])}
		return unix.Sendto(k.fd6, pkt, unix.MSG_DONTWAIT, &sa) == nil
	}
	return false
}

func (k *toKernel) close() {
	unix.Close(k.fd4)
	unix.Close(k.fd6)
}

// onEngineEvent turns the control plane's events into stream events.
func (r *Router) onEngineEvent(ev slowpath.Event) {
	out := Event{Source: addrPortString(ev.Source), Detail: ev.Site}
	switch ev.Kind {
	case slowpath.EventRegistrationAccepted:
		out.Kind = EventRegistrationAccepted
	case slowpath.EventRegistrationRejected:
		out.Kind = EventRegistrationRejected
		out.Detail = ev.Reason
		if ev.Site != "" {
			out.Detail = ev.Site + ": " + ev.Reason
		}
	case slowpath.EventRegistrationExpired:
		out.Kind = EventRegistrationExpired
	default:
		return
	}
	if ev.EID.Prefix.IsValid() {
		out.IID, out.EID = ev.EID.IID, ev.EID.Prefix.String()
	}
	r.events.publish(out)
}

func addrPortString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
