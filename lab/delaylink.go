package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rloc-router/rloc/lab/netns"
)

// delayIfs returns the forwarder namespace's interfaces of link i.
func delayIfs(i int) (a, b string) { return fmt.Sprintf("d%da", i), fmt.Sprintf("d%db", i) }

// buildDelayed builds delayed link i: the forwarder namespace (on first
// use), and a veth pair from each end's node into it.
func (l *Lab) buildDelayed(ctx context.Context, i int, who string) error {
	k := &l.topo.Links[i]
	fns := l.nodes[DelayNS]
	if fns == nil {
		ns, err := netns.New(l.NSName(DelayNS))
		if err != nil {
			return fmt.Errorf("lab: delay forwarder: %w", err)
		}
		l.created = append(l.created, ns)
		l.nodes[DelayNS] = ns
		fns = ns
		// The forwarder's interfaces carry no addresses and send nothing
		// of their own (no IPv6 link-local, no router solicitations).
		if err := ns.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
			return fmt.Errorf("lab: delay forwarder: %w", err)
		}
	}
	ifs := [2]string{}
	ifs[0], ifs[1] = delayIfs(i)
	for j := range k.Ends {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		e := &k.Ends[j]
		if err := netns.VethQueues(l.nodes[e.Node], e.Ifname, fns, ifs[j], k.Queues); err != nil {
			return fmt.Errorf("lab: %s: %w", who, err)
		}
		if k.MTU > 0 {
			fl, err := fns.Link(ifs[j])
			if err != nil {
				return fmt.Errorf("lab: %s: %w", who, err)
			}
			if err := fns.Netlink().LinkSetMTU(fl, k.MTU); err != nil {
				return fmt.Errorf("lab: %s: mtu %d: %w", who, k.MTU, err)
			}
		}
		if err := l.setupEnd(who, e, k.MTU); err != nil {
			return err
		}
		// Frames cross a packet socket, which loses the "checksum
		// partial" mark: the node must send complete checksums (and so
		// no TSO super-frames either), as on a real wire.
		if err := l.nodes[e.Node].SetTxChecksum(e.Ifname, false); err != nil {
			return fmt.Errorf("lab: %s: %w", who, err)
		}
	}
	return nil
}

// delaySpecs returns the forwarder's view of the delayed links.
func (l *Lab) delaySpecs() []delaySpec {
	specs := make([]delaySpec, 0, len(l.delayed))
	for _, i := range l.delayed {
		k := &l.topo.Links[i]
		a, b := delayIfs(i)
		s := delaySpec{Name: k.Name, A: a, B: b, Seed: k.Seed, Queue: k.Queue, Snap: 1500}
		if s.Name == "" {
			s.Name = fmt.Sprintf("links[%d]", i)
		}
		s.Delay, s.Jitter, s.Loss = k.Shape()
		if s.Seed == 0 {
			s.Seed = uint64(i) + 1
		}
		if s.Queue == 0 {
			s.Queue = defaultDelayQueue
		}
		if k.MTU > 0 {
			s.Snap = k.MTU
		}
		s.Snap += 18 // Ethernet header and one VLAN tag
		specs = append(specs, s)
	}
	return specs
}

// delayStartTimeout bounds the wait for the forwarder daemon's ready line.
const delayStartTimeout = 10 * time.Second

// startDelay starts the forwarder of the delayed links, in this process
// (argv empty) or as the daemon argv inside the forwarder namespace, and
// returns once its sockets are open.
func (l *Lab) startDelay(ctx context.Context, argv []string) error {
	if len(l.delayed) == 0 {
		return nil
	}
	specs := l.delaySpecs()
	fns := l.nodes[DelayNS]
	if len(argv) == 0 {
		var f *forwarder
		err := fns.Do(func() (err error) {
			f, err = openForwarder(specs)
			return err
		})
		if err != nil {
			return err
		}
		f.start()
		l.fwd = f
		return nil
	}
	spec, err := json.Marshal(specs)
	if err != nil {
		return fmt.Errorf("lab: delay: %w", err)
	}
	c, err := l.Command(DelayNS, argv...)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(delayLogPath(l.id), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("lab: delay: %w", err)
	}
	defer logf.Close()
	c.Stdin = strings.NewReader(string(spec))
	c.Stderr = logf
	out, err := c.StdoutPipe()
	if err != nil {
		return fmt.Errorf("lab: delay: %w", err)
	}
	p, err := l.StartCmd(c)
	if err != nil {
		return err
	}
	l.fwdProc = p
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != DelayReady {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
	}()
	t := time.NewTimer(delayStartTimeout)
	defer t.Stop()
	select {
	case err = <-ready:
	case <-t.C:
		err = fmt.Errorf("no ready line within %v", delayStartTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		log, _ := os.ReadFile(delayLogPath(l.id))
		return fmt.Errorf("lab: delay forwarder %v: %w (log: %s)", argv, err, strings.TrimSpace(string(log)))
	}
	return nil
}

// DelayStats returns the counters of the delayed link called name, from
// node A to node B and back. They are known only when the forwarder runs
// in this process (Options.DelayCommand empty); the daemon writes its own
// to its log when stopped.
func (l *Lab) DelayStats(name string) (ab, ba DelayStats, err error) {
	if l.fwd == nil {
		return ab, ba, errors.New("lab: delay counters: no forwarder in this process")
	}
	for j, i := range l.delayed {
		if l.topo.Links[i].Name == name {
			st := l.fwd.stats(j)
			return st[0], st[1], nil
		}
	}
	return ab, ba, fmt.Errorf("lab: no delayed link %q", name)
}
