package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rloc-router/rloc/lab/netns"
	"github.com/vishvananda/netlink"
)

// NamePrefix starts the name of every namespace lab creates:
// NamePrefix + run ID + "-" + node or bridge name.
const NamePrefix = "rlab-"

// bridgeIf is the bridge's name inside a bridge segment's namespace.
const bridgeIf = "br0"

var idRE = regexp.MustCompile(`^[a-z0-9]{1,12}$`)

// Options tune Up.
type Options struct {
	// ID is the run identifier put into every namespace name (1 to 12
	// lower-case letters and digits). Empty picks a random one.
	ID string
	// Detached marks a run that outlives the process that built it
	// (labctl up): Clean does not treat it as stale when that process is
	// gone.
	Detached bool
	// File is recorded in the state file (informational).
	File string
	// DelayCommand is the argv of the forwarder daemon of delayed links
	// (labctl passes itself: [labctl, "delayd"]; see ServeDelay). Up starts
	// it inside the forwarder namespace, so it outlives this process and
	// Down (or DownState from any process) kills it with the namespace.
	// Empty: the forwarder runs as goroutines of this process, stopped by
	// Down; a Detached run with delayed links then is an error.
	DelayCommand []string
}

// Lab is a running topology. Its methods are safe for concurrent use.
type Lab struct {
	topo  *Topology
	id    string
	state string // state file path

	nodes   map[string]*netns.NS // node and bridge namespaces by topology name
	created []*netns.NS          // in creation order

	mu    sync.Mutex
	procs []*Proc
	down  bool

	delayed []int      // indexes of the delayed links, in forwarder order
	fwd     *forwarder // in-process forwarder, or nil
	fwdProc *Proc      // forwarder daemon, or nil
}

// Up builds the topology with default options. See UpWith.
func (t *Topology) Up(ctx context.Context) (*Lab, error) {
	return t.UpWith(ctx, Options{})
}

// UpWith builds the topology: writes the state file, creates the
// namespaces, bridges, veth pairs, addresses, sysctls and routes. On any
// error (or when ctx ends) it tears down what it made and returns the
// error, which names the node, link or bridge concerned.
func (t *Topology) UpWith(ctx context.Context, o Options) (*Lab, error) {
	if t.byName == nil {
		return nil, errors.New("lab: topology not validated (use Parse or Load)")
	}
	if o.ID == "" {
		o.ID = netns.Suffix()
	}
	if !idRE.MatchString(o.ID) {
		return nil, fmt.Errorf("lab: run ID %q: use 1 to 12 lower-case letters and digits", o.ID)
	}
	l := &Lab{topo: t, id: o.ID, nodes: map[string]*netns.NS{}}
	st := State{ID: o.ID, Name: t.Name, File: o.File, PID: os.Getpid(), Detached: o.Detached}
	st.Start, _ = procStart(st.PID)
	for _, n := range t.Nodes {
		st.Namespaces = append(st.Namespaces, l.NSName(n.Name))
	}
	for _, b := range t.Bridges {
		st.Namespaces = append(st.Namespaces, l.NSName(b.Name))
	}
	for i := range t.Links {
		if t.Links[i].Delayed() {
			l.delayed = append(l.delayed, i)
		}
	}
	if len(l.delayed) > 0 {
		if o.Detached && len(o.DelayCommand) == 0 {
			return nil, errors.New("lab: a detached run with delayed links needs Options.DelayCommand")
		}
		st.Namespaces = append(st.Namespaces, l.NSName(DelayNS))
	}
	for _, name := range st.Namespaces {
		if _, err := os.Stat(netnsDir + "/" + name); err == nil {
			return nil, fmt.Errorf("lab: namespace %s exists already (run ID %q in use?)", name, o.ID)
		}
	}
	path, err := writeState(&st)
	if err != nil {
		return nil, err
	}
	l.state = path
	err = l.build(ctx)
	if err == nil {
		err = l.startDelay(ctx, o.DelayCommand)
	}
	if err != nil {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, fmt.Errorf("lab: teardown after failure: %w", derr))
		}
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context) error {
	t := l.topo
	mk := func(name string) (*netns.NS, error) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		ns, err := netns.New(l.NSName(name))
		if err != nil {
			return nil, fmt.Errorf("lab: %s: %w", name, err)
		}
		l.created = append(l.created, ns)
		l.nodes[name] = ns
		// No duplicate address detection anywhere, link-local included, so
		// addresses are usable at once.
		for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
			if err := ns.Sysctl(k, "0"); err != nil {
				return nil, fmt.Errorf("lab: %s: sysctl %s: %w", name, k, err)
			}
		}
		return ns, nil
	}
	for _, n := range t.Nodes {
		if _, err := mk(n.Name); err != nil {
			return err
		}
	}
	for i := range t.Bridges {
		b := &t.Bridges[i]
		ns, err := mk(b.Name)
		if err != nil {
			return err
		}
		if err := ns.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
			return fmt.Errorf("lab: bridge %q: %w", b.Name, err)
		}
		snoop := b.Snooping
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeIf}, MulticastSnooping: &snoop}
		if err := ns.Netlink().LinkAdd(br); err != nil {
			return fmt.Errorf("lab: bridge %q: create: %w", b.Name, err)
		}
		if err := ns.SetUp(bridgeIf); err != nil {
			return fmt.Errorf("lab: bridge %q: %w", b.Name, err)
		}
	}
	for i := range t.Links {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		k := &t.Links[i]
		a, b := &k.Ends[0], &k.Ends[1]
		who := fmt.Sprintf("link %q", k.Name)
		if k.Name == "" {
			who = fmt.Sprintf("link %s/%s-%s/%s", a.Node, a.Ifname, b.Node, b.Ifname)
		}
		if k.Delayed() {
			if err := l.buildDelayed(ctx, i, who); err != nil {
				return err
			}
			continue
		}
		if err := netns.VethQueues(l.nodes[a.Node], a.Ifname, l.nodes[b.Node], b.Ifname, k.Queues); err != nil {
			return fmt.Errorf("lab: %s: %w", who, err)
		}
		for _, e := range k.Ends {
			if err := l.setupEnd(who, &e, k.MTU); err != nil {
				return err
			}
		}
	}
	for i := range t.Bridges {
		b := &t.Bridges[i]
		bns := l.nodes[b.Name]
		master, err := bns.Link(bridgeIf)
		if err != nil {
			return fmt.Errorf("lab: bridge %q: %w", b.Name, err)
		}
		for j := range b.Ports {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("lab: %w", err)
			}
			p := &b.Ports[j]
			who := fmt.Sprintf("bridge %q port %s/%s", b.Name, p.Node, p.Ifname)
			pname := fmt.Sprintf("p%d", j)
			if err := netns.Veth(l.nodes[p.Node], p.Ifname, bns, pname); err != nil {
				return fmt.Errorf("lab: %s: %w", who, err)
			}
			pl, err := bns.Link(pname)
			if err != nil {
				return fmt.Errorf("lab: %s: %w", who, err)
			}
			if b.MTU > 0 {
				if err := bns.Netlink().LinkSetMTU(pl, b.MTU); err != nil {
					return fmt.Errorf("lab: %s: mtu: %w", who, err)
				}
			}
			if err := bns.Netlink().LinkSetMaster(pl, master); err != nil {
				return fmt.Errorf("lab: %s: attach to bridge: %w", who, err)
			}
			if err := l.setupEnd(who, p, b.MTU); err != nil {
				return err
			}
		}
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		ns := l.nodes[n.Name]
		keys := make([]string, 0, len(n.Sysctls))
		for k := range n.Sysctls {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := ns.Sysctl(k, n.Sysctls[k]); err != nil {
				return fmt.Errorf("lab: node %q: sysctls: %s=%s: %w", n.Name, k, n.Sysctls[k], err)
			}
		}
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		for j := range n.Routes {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("lab: %w", err)
			}
			if err := l.addRoute(l.nodes[n.Name], &n.Routes[j]); err != nil {
				return fmt.Errorf("lab: node %q: routes[%d] (to %s): %w", n.Name, j, n.Routes[j].To, err)
			}
		}
	}
	return nil
}

// setupEnd sets the MTU, MAC and addresses of one node interface.
func (l *Lab) setupEnd(who string, e *End, mtu int) error {
	ns := l.nodes[e.Node]
	link, err := ns.Link(e.Ifname)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", who, err)
	}
	if mtu > 0 {
		if err := ns.Netlink().LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("lab: %s: mtu %d: %w", who, mtu, err)
		}
	}
	if e.MAC != "" {
		mac, _ := parseMAC(e.MAC)
		if err := ns.Netlink().LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("lab: %s: mac: %w", who, err)
		}
	}
	for _, p := range e.prefixes {
		if err := ns.AddAddr(e.Ifname, p); err != nil {
			return fmt.Errorf("lab: %s: addrs: %w", who, err)
		}
	}
	return nil
}

func (l *Lab) addRoute(ns *netns.NS, r *Route) error {
	dst := &net.IPNet{IP: r.dst.Addr().AsSlice(), Mask: net.CIDRMask(r.dst.Bits(), r.dst.Addr().BitLen())}
	rt := &netlink.Route{Dst: dst, Priority: r.Metric}
	if r.via.IsValid() {
		rt.Gw = r.via.AsSlice()
	}
	if r.src.IsValid() {
		rt.Src = r.src.AsSlice()
	}
	if r.Dev != "" {
		link, err := ns.Link(r.Dev)
		if err != nil {
			return err
		}
		rt.LinkIndex = link.Attrs().Index
	}
	return ns.Netlink().RouteAdd(rt)
}

// ID returns the run identifier.
func (l *Lab) ID() string { return l.id }

// Topology returns the topology the lab was built from.
func (l *Lab) Topology() *Topology { return l.topo }

// StateFile returns the path of the run's state file.
func (l *Lab) StateFile() string { return l.state }

// NSName returns the namespace name of node (or bridge) name in this run.
func (l *Lab) NSName(name string) string { return NamePrefix + l.id + "-" + name }

// Node returns the namespace of the node (or bridge segment) called name,
// or nil.
func (l *Lab) Node(name string) *netns.NS { return l.nodes[name] }

// Command returns a command running argv inside node (through `ip netns
// exec`), in a process group of its own. It is not started and not
// tracked; use StartCmd to have Down stop it.
func (l *Lab) Command(node string, argv ...string) (*exec.Cmd, error) {
	ns := l.nodes[node]
	if ns == nil {
		return nil, fmt.Errorf("lab: no node %q", node)
	}
	if len(argv) == 0 {
		return nil, errors.New("lab: empty command")
	}
	c := ns.Command(argv[0], argv[1:]...)
	// No Pdeathsig: it fires when the forking OS thread exits, which a
	// thread used by netns.Do does.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c, nil
}

// Exec runs argv inside node to completion and returns its combined output.
func (l *Lab) Exec(node string, argv ...string) ([]byte, error) {
	c, err := l.Command(node, argv...)
	if err != nil {
		return nil, err
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("lab: %s: %v: %w", node, argv, err)
	}
	return out, nil
}

// Start starts argv inside node, its output discarded; Down stops it.
func (l *Lab) Start(node string, argv ...string) (*Proc, error) {
	c, err := l.Command(node, argv...)
	if err != nil {
		return nil, err
	}
	return l.StartCmd(c)
}

// StartCmd starts c (from Command, with its output set up as the caller
// wants) and tracks it so that Down stops it.
func (l *Lab) StartCmd(c *exec.Cmd) (*Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, errors.New("lab: is down")
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %v: %w", c.Args, err)
	}
	p := &Proc{Cmd: c, done: make(chan struct{})}
	go func() {
		p.err = c.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Proc is a process started in a node. Do not call Cmd.Wait; use Wait.
type Proc struct {
	// Cmd is the running command.
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the exit. It returns the process's exit error, which for a
// stopped process reports the signal.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	pid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// Down stops every process started with Start, kills whatever else still
// runs in the lab's namespaces, deletes the namespaces (and so every
// interface and bridge in them) and the state file. It is idempotent.
func (l *Lab) Down() error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	l.down = true
	procs := l.procs
	l.mu.Unlock()
	var errs []error
	if l.fwd != nil {
		if err := l.fwd.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Stop(2 * time.Second)
		}()
	}
	wg.Wait()
	for i := len(l.created) - 1; i >= 0; i-- {
		ns := l.created[i]
		if err := killNamespace(ns.Name); err != nil {
			errs = append(errs, err)
		}
		if err := ns.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.state != "" {
		if err := os.Remove(delayLogPath(l.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: %w", err))
		}
		if err := os.Remove(l.state); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: %w", err))
		}
	}
	return errors.Join(errs...)
}

func parseMAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil {
		return nil, err
	}
	if len(m) != 6 {
		return nil, fmt.Errorf("%q is not a 48-bit MAC", s)
	}
	return m, nil
}
