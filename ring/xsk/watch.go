package xsk

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// FeatureWatch tells when an interface's xdp-features may have changed in
// the network namespace it was opened in: it listens to the netdev generic
// netlink family's "mgmt" notifications (a device added, removed, or its
// xdp-features changed; a veth's change when its peer attaches or detaches
// an XDP program). Read AcceptsRedirects again on each signal.
type FeatureWatch struct {
	s    *nl.NetlinkSocket
	c    chan struct{}
	done chan struct{}

	mu     sync.Mutex
	err    error
	closed bool
}

// netdev generic netlink (include/uapi/linux/netdev.h): the notifications
// of the "mgmt" group.
const (
	netdevCmdDevAddNtf    = 2
	netdevCmdDevDelNtf    = 3
	netdevCmdDevChangeNtf = 4
)

// WatchFeatures opens a FeatureWatch in the calling thread's network
// namespace. It fails when the kernel has no netdev family or no "mgmt"
// group (before Linux 6.3): then only reading AcceptsRedirects from time
// to time tells.
func WatchFeatures() (*FeatureWatch, error) {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return nil, fmt.Errorf("xsk: watch xdp-features: no netdev generic netlink family (Linux 6.3 or later): %w", err)
	}
	group := uint32(0)
	for _, g := range fam.Groups {
		if g.Name == "mgmt" {
			group = g.ID
		}
	}
	if group == 0 {
		return nil, errors.New("xsk: watch xdp-features: the netdev family has no mgmt group")
	}
	s, err := nl.Subscribe(unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("xsk: watch xdp-features: %w", err)
	}
	// Generic netlink group IDs are not limited to the 32 of the bind
	// address's bitmap.
	if err := unix.SetsockoptInt(s.GetFd(), unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		s.Close()
		return nil, fmt.Errorf("xsk: watch xdp-features: join group %d: %w", group, err)
	}
	w := &FeatureWatch{s: s, c: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// C receives a value after one or more notifications (they coalesce): at
// least one interface was added, removed or changed its xdp-features. It
// also receives one when notifications were lost (the socket's buffer
// overflowed) and when the watch stopped on an error (Err).
func (w *FeatureWatch) C() <-chan struct{} { return w.c }

// Err is the error that stopped the watch, nil while it runs or after
// Close.
func (w *FeatureWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops the watch and waits for its goroutine.
func (w *FeatureWatch) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.s.Close() // wakes Receive
	<-w.done
	return nil
}

func (w *FeatureWatch) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

func (w *FeatureWatch) run() {
	defer close(w.done)
	for {
		msgs, _, err := w.s.Receive()
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		switch {
		case closed:
			return
		case errors.Is(err, unix.ENOBUFS):
			w.signal() // notifications were lost: look again
			continue
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case err != nil:
			w.mu.Lock()
			w.err = fmt.Errorf("xsk: watch xdp-features: %w", err)
			w.mu.Unlock()
			w.signal()
			return
		}
		for _, m := range msgs {
			if len(m.Data) < nl.SizeofGenlmsg {
				continue
			}
			switch m.Data[0] {
			case netdevCmdDevAddNtf, netdevCmdDevDelNtf, netdevCmdDevChangeNtf:
				w.signal()
			}
		}
	}
}
