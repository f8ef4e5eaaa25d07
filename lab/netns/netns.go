// Package netns builds small test topologies from network namespaces and veth
// pairs: create a named namespace, join two namespaces with a veth pair,
// address and raise interfaces, run a function inside a namespace, tear down.
// The end-to-end tests, the benchmarks and `make demo` build on it; the
// helpers for tests (namespaces deleted by the test's cleanup, the root
// check) are in internal/testkit/netnstest, so this package does not link
// the testing framework into labctl.
//
// Every namespace is named (visible to `ip netns exec`), so commands can also
// run inside it. Names should carry a per-run suffix (Suffix) so parallel test
// packages never clash; interface names must stay within 15 bytes.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Suffix returns a short random hex string (6 characters) to make names
// unique per run.
func Suffix() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("%06x", os.Getpid()&0xffffff)
	}
	return hex.EncodeToString(b[:])
}

// NS is a named network namespace.
type NS struct {
	// Name is the namespace's name (under /var/run/netns).
	Name string
	h    vnetns.NsHandle
	nl   *netlink.Handle
}

// New creates the named network namespace name and brings its loopback up.
func New(name string) (*NS, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("netns: bad name %q", name)
	}
	var h vnetns.NsHandle
	err := locked(func() error {
		orig, err := vnetns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		h, err = vnetns.NewNamed(name)
		if err != nil {
			return err
		}
		return vnetns.Set(orig)
	})
	if err != nil {
		return nil, fmt.Errorf("netns: create %s: %w", name, err)
	}
	n := &NS{Name: name, h: h}
	if n.nl, err = netlink.NewHandleAt(h); err != nil {
		n.Close()
		return nil, fmt.Errorf("netns: netlink in %s: %w", name, err)
	}
	if err := n.SetUp("lo"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// locked runs fn on a fresh OS thread that is thrown away afterwards, so a
// namespace switch inside fn can never leak to other goroutines.
func locked(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with the goroutine.
		errc <- fn()
	}()
	return <-errc
}

// Do runs fn on an OS thread inside the namespace and returns its error.
// Sockets fn opens stay in the namespace after it returns; goroutines it
// starts do not run in the namespace.
func (n *NS) Do(fn func() error) error {
	return locked(func() error {
		if err := vnetns.Set(n.h); err != nil {
			return fmt.Errorf("netns: enter %s: %w", n.Name, err)
		}
		return fn()
	})
}

// Netlink returns a netlink handle working inside the namespace.
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Command returns an exec.Cmd running name with args inside the namespace
// (through `ip netns exec`).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Close deletes the namespace; the interfaces inside it go with it.
func (n *NS) Close() error {
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	var errs []error
	if n.h.IsOpen() {
		errs = append(errs, n.h.Close())
		n.h = vnetns.None()
	}
	if err := vnetns.DeleteNamed(n.Name); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("netns: delete %s: %w", n.Name, err))
	}
	return errors.Join(errs...)
}

// Veth creates a veth pair: aName inside a and bName inside b, both up.
func Veth(a *NS, aName string, b *NS, bName string) error { return VethQueues(a, aName, b, bName, 1) }

// VethQueues is Veth with queues receive and transmit queues on both ends
// (`ip link add ... numrxqueues N numtxqueues N`; below 2: the default one).
func VethQueues(a *NS, aName string, b *NS, bName string, queues int) error {
	if len(aName) > 15 || len(bName) > 15 {
		return fmt.Errorf("netns: interface names %q, %q longer than 15 bytes", aName, bName)
	}
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.h)),
	}
	if queues > 1 {
		v.NumTxQueues, v.NumRxQueues = queues, queues
		v.PeerNumTxQueues, v.PeerNumRxQueues = uint32(queues), uint32(queues)
	}
	if err := a.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("netns: veth %s/%s: %w", aName, bName, err)
	}
	if err := a.SetUp(aName); err != nil {
		return err
	}
	return b.SetUp(bName)
}

// SetUp brings interface ifname up.
func (n *NS) SetUp(ifname string) error {
	l, err := n.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns: %s in %s: %w", ifname, n.Name, err)
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("netns: up %s in %s: %w", ifname, n.Name, err)
	}
	return nil
}

// AddAddr adds prefix (address and length, e.g. 10.0.0.1/24) to ifname. IPv6
// addresses skip duplicate address detection so they are usable at once.
func (n *NS) AddAddr(ifname string, prefix netip.Prefix) error {
	l, err := n.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns: %s in %s: %w", ifname, n.Name, err)
	}
	a, err := netlink.ParseAddr(prefix.String())
	if err != nil {
		return err
	}
	if prefix.Addr().Is6() {
		a.Flags |= unix.IFA_F_NODAD
	}
	if err := n.nl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("netns: address %v on %s in %s: %w", prefix, ifname, n.Name, err)
	}
	return nil
}

// AddBridge creates bridge ifname with queues receive and transmit queues
// (below 2: the default one), down: a device without ethtool channels.
func (n *NS) AddBridge(ifname string, queues int) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: ifname}}
	if queues > 1 {
		br.NumRxQueues, br.NumTxQueues = queues, queues
	}
	if err := n.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("netns: bridge %s in %s: %w", ifname, n.Name, err)
	}
	return nil
}

// Link returns interface ifname inside the namespace.
func (n *NS) Link(ifname string) (netlink.Link, error) {
	return n.nl.LinkByName(ifname)
}

// Sysctl writes value to the sysctl key (dotted, e.g.
// net.ipv4.ip_forward) inside the namespace.
func (n *NS) Sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	return n.Do(func() error { return os.WriteFile(p, []byte(value), 0o644) })
}
