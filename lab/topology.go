// Package lab builds network-namespace topologies described in a YAML file:
// nodes (one namespace each), veth links between two nodes, bridge segments
// (a Linux bridge in a namespace of its own, joining several nodes on one
// multicast-capable L2 segment), links with a one-way delay, jitter and
// loss added by a user-space forwarder, IPv4/IPv6 addresses (IPv6 without DAD),
// routes, sysctls and free-form per-node role metadata. The demo, the
// end-to-end tests and the benchmarks use it.
//
// Every run gets an identifier (a short random string unless one is chosen)
// that goes into every namespace name, so that two runs of the same file
// never clash. A state file records what a run created, so that another
// process (labctl down) can tear it down and a crashed run can be cleaned.
//
// A topology file looks like this:
//
//	nodes:
//	  - name: a
//	    routes: [{to: default, via: 10.0.1.1}]
//	  - name: r
//	    sysctls: {net.ipv4.ip_forward: 1}
//	    role: {config: configs/xtr.yaml}
//	  - name: b
//	links:
//	  - name: ar
//	    ends:
//	      - {node: a, ifname: eth0, addrs: [10.0.1.2/24]}
//	      - {node: r, ifname: eth0, addrs: [10.0.1.1/24]}
//	  - name: rb
//	    delay: 10ms # one way; also jitter: 1ms, loss: 0.1% (see DelayNS)
//	    ends:
//	      - {node: r, ifname: eth1, addrs: [10.0.3.1/24]}
//	      - {node: b, ifname: eth1, addrs: [10.0.3.2/24]}
//	bridges:
//	  - name: core
//	    ports:
//	      - {node: r, ifname: core0, addrs: [10.0.2.1/24]}
//	      - {node: b, ifname: core0, addrs: [10.0.2.2/24]}
package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Topology is a parsed and validated topology file. Build it with Parse or
// Load; Up brings it to life.
type Topology struct {
	// Name is an optional label for logs.
	Name string `yaml:"name"`
	// Nodes are the namespaces, in the order they are created.
	Nodes []Node `yaml:"nodes"`
	// Links are veth pairs joining two nodes.
	Links []Link `yaml:"links"`
	// Bridges are L2 segments joining several nodes.
	Bridges []Bridge `yaml:"bridges"`

	byName map[string]int
}

// Node is one namespace.
type Node struct {
	// Name names the node in the file and in Lab methods: lower-case
	// letters, digits and '-', at most MaxNodeName bytes.
	Name string `yaml:"name"`
	// Sysctls are written inside the namespace after the interfaces exist
	// and before the routes, e.g. net.ipv4.ip_forward: 1.
	Sysctls map[string]string `yaml:"sysctls"`
	// Routes are added after the addresses.
	Routes []Route `yaml:"routes"`
	// Role is free-form metadata for whoever runs things in the node (for
	// rlocd: the configuration file to start there). lab does not read it.
	Role map[string]any `yaml:"role"`
}

// Route is one route of a node.
type Route struct {
	// To is the destination prefix, or "default" (the family then follows
	// Via), or "default4" / "default6".
	To string `yaml:"to"`
	// Via is the gateway address; optional when Dev is set.
	Via string `yaml:"via"`
	// Dev is the outgoing interface; optional when Via is set.
	Dev string `yaml:"dev"`
	// Src is the preferred source address; optional.
	Src string `yaml:"src"`
	// Metric is the route priority; optional.
	Metric int `yaml:"metric"`

	dst      netip.Prefix
	via, src netip.Addr
}

// Link is a veth pair between two nodes.
type Link struct {
	// Name names the link in errors.
	Name string `yaml:"name"`
	// MTU of both ends; 0 keeps the default (1500).
	MTU int `yaml:"mtu"`
	// Queues is the number of receive and transmit queues of both ends
	// (0 or 1: one). The sender picks a transmit queue per flow, and veth
	// receives on the queue of the same number, so several flows spread
	// over the receiver's queues (and its AF_XDP sockets, one per queue).
	Queues int `yaml:"queues"`
	// Ends are the two interfaces.
	Ends []End `yaml:"ends"`
	// Delay is the one-way delay added in each direction ("10ms", "1.5ms";
	// Go duration syntax). Any of Delay, Jitter and Loss makes the link a
	// delayed link: frames cross a user-space forwarder (see DelayNS).
	Delay string `yaml:"delay"`
	// Jitter spreads each frame's delay uniformly over Delay ± Jitter
	// (never below zero); frames are never reordered: one drawn earlier
	// than its predecessor's leaves right after it.
	Jitter string `yaml:"jitter"`
	// Loss is the share of frames dropped in each direction, as a
	// percentage ("0.1%").
	Loss string `yaml:"loss"`
	// Seed seeds the loss and jitter draws of a delayed link (0: the
	// link's index plus one), so a run is repeatable.
	Seed uint64 `yaml:"seed"`
	// Queue bounds the frames a direction of a delayed link holds (0:
	// 4096); frames beyond are dropped and counted.
	Queue int `yaml:"queue"`

	delay, jitter time.Duration
	loss          float64
}

// Delayed reports whether the link goes through the delay forwarder.
func (l *Link) Delayed() bool { return l.Delay != "" || l.Jitter != "" || l.Loss != "" }

// Shape returns the parsed delay, jitter and loss (a probability, 0 to 1)
// of the link.
func (l *Link) Shape() (delay, jitter time.Duration, loss float64) {
	return l.delay, l.jitter, l.loss
}

// Bridge is an L2 segment: a Linux bridge in a namespace of its own, with a
// veth pair from each port's node to the bridge. Multicast snooping is off
// unless Snooping is set, so multicast floods to every port without an
// IGMP/MLD querier.
type Bridge struct {
	// Name names the segment (and its namespace); same rules as node names.
	Name string `yaml:"name"`
	// MTU of every port; 0 keeps the default.
	MTU int `yaml:"mtu"`
	// Snooping turns IGMP/MLD snooping on.
	Snooping bool `yaml:"snooping"`
	// Ports are the nodes' interfaces on the segment, at least two.
	Ports []End `yaml:"ports"`
}

// End is one interface of a node on a link or bridge.
type End struct {
	// Node is the node's name.
	Node string `yaml:"node"`
	// Ifname is the interface name inside the node (at most 15 bytes).
	Ifname string `yaml:"ifname"`
	// Addrs are the interface's addresses with their prefix lengths
	// (10.0.0.1/24, 2001:db8::1/64). IPv6 addresses skip DAD.
	Addrs []string `yaml:"addrs"`
	// MAC optionally fixes the interface's MAC address.
	MAC string `yaml:"mac"`

	prefixes []netip.Prefix
}

// Prefixes returns the parsed addresses of the end.
func (e *End) Prefixes() []netip.Prefix { return e.prefixes }

// Limits on names.
const (
	// MaxNodeName is the longest node or bridge name.
	MaxNodeName = 20
	// MaxIfname is the longest interface name Linux accepts (IFNAMSIZ-1).
	MaxIfname = 15
)

var (
	nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	ifnameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	sysctlRE   = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$`)
)

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses and validates a topology. Unknown keys are errors; every
// validation error names the node, link or bridge and the key at fault.
func Parse(b []byte) (*Topology, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var t Topology
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("lab: empty topology")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("lab: %s", friendlyYAML(te))
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("lab: more than one YAML document")
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Node returns the node called name.
func (t *Topology) Node(name string) (*Node, bool) {
	i, ok := t.byName[name]
	if !ok {
		return nil, false
	}
	return &t.Nodes[i], true
}

// Addr returns the first address of the given family (4 or 6) on node's
// interface ifname, as written in the file.
func (t *Topology) Addr(node, ifname string, family int) (netip.Addr, bool) {
	for _, e := range t.ends() {
		if e.Node != node || e.Ifname != ifname {
			continue
		}
		for _, p := range e.prefixes {
			if (family == 4) == p.Addr().Is4() {
				return p.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

// ends returns every link end and bridge port.
func (t *Topology) ends() []*End {
	var es []*End
	for i := range t.Links {
		for j := range t.Links[i].Ends {
			es = append(es, &t.Links[i].Ends[j])
		}
	}
	for i := range t.Bridges {
		for j := range t.Bridges[i].Ports {
			es = append(es, &t.Bridges[i].Ports[j])
		}
	}
	return es
}

func (t *Topology) validate() error {
	if len(t.Nodes) == 0 {
		return errors.New("lab: nodes: at least one node is needed")
	}
	t.byName = make(map[string]int, len(t.Nodes))
	names := map[string]string{} // node and bridge names share the namespace names
	for i := range t.Nodes {
		n := &t.Nodes[i]
		where := fmt.Sprintf("nodes[%d]", i)
		if err := checkName(where, n.Name); err != nil {
			return err
		}
		if prev, dup := names[n.Name]; dup {
			return fmt.Errorf("lab: node %q: name already used by %s", n.Name, prev)
		}
		names[n.Name] = "node " + n.Name
		t.byName[n.Name] = i
	}
	ifaces := map[string]string{} // node/ifname -> user
	checkEnd := func(who string, e *End) error {
		if _, ok := t.byName[e.Node]; !ok {
			if e.Node == "" {
				return fmt.Errorf("lab: %s: node: missing", who)
			}
			return fmt.Errorf("lab: %s: node: unknown node %q", who, e.Node)
		}
		switch {
		case e.Ifname == "":
			return fmt.Errorf("lab: %s: ifname: missing", who)
		case len(e.Ifname) > MaxIfname:
			return fmt.Errorf("lab: %s: ifname %q: longer than %d bytes", who, e.Ifname, MaxIfname)
		case !ifnameRE.MatchString(e.Ifname) || e.Ifname == "lo":
			return fmt.Errorf("lab: %s: ifname %q: not a usable interface name", who, e.Ifname)
		}
		key := e.Node + "/" + e.Ifname
		if prev, dup := ifaces[key]; dup {
			return fmt.Errorf("lab: %s: ifname %q: node %s already has it (%s)", who, e.Ifname, e.Node, prev)
		}
		ifaces[key] = who
		e.prefixes = e.prefixes[:0]
		for _, a := range e.Addrs {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return fmt.Errorf("lab: %s: addrs: %q is not an address/length: %v", who, a, err)
			}
			e.prefixes = append(e.prefixes, p)
		}
		if e.MAC != "" {
			if _, err := parseMAC(e.MAC); err != nil {
				return fmt.Errorf("lab: %s: mac: %v", who, err)
			}
		}
		return nil
	}
	for i := range t.Links {
		l := &t.Links[i]
		who := fmt.Sprintf("links[%d]", i)
		if l.Name != "" {
			who = fmt.Sprintf("link %q", l.Name)
		}
		if len(l.Ends) != 2 {
			return fmt.Errorf("lab: %s: ends: a link has exactly 2 ends, got %d (use a bridge for more)", who, len(l.Ends))
		}
		if l.MTU < 0 || l.MTU > 65535 {
			return fmt.Errorf("lab: %s: mtu: %d out of range", who, l.MTU)
		}
		if l.Queues < 0 || l.Queues > 64 {
			return fmt.Errorf("lab: %s: queues: %d out of range (0..64)", who, l.Queues)
		}
		for j := range l.Ends {
			if err := checkEnd(fmt.Sprintf("%s end %d", who, j), &l.Ends[j]); err != nil {
				return err
			}
		}
		if err := l.checkShape(who); err != nil {
			return err
		}
	}
	for i := range t.Bridges {
		br := &t.Bridges[i]
		if err := checkName(fmt.Sprintf("bridges[%d]", i), br.Name); err != nil {
			return err
		}
		who := fmt.Sprintf("bridge %q", br.Name)
		if prev, dup := names[br.Name]; dup {
			return fmt.Errorf("lab: %s: name already used by %s", who, prev)
		}
		names[br.Name] = who
		if len(br.Ports) < 2 {
			return fmt.Errorf("lab: %s: ports: a bridge needs at least 2 ports, got %d", who, len(br.Ports))
		}
		if br.MTU < 0 || br.MTU > 65535 {
			return fmt.Errorf("lab: %s: mtu: %d out of range", who, br.MTU)
		}
		for j := range br.Ports {
			if err := checkEnd(fmt.Sprintf("%s port %d", who, j), &br.Ports[j]); err != nil {
				return err
			}
		}
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		who := fmt.Sprintf("node %q", n.Name)
		for k, v := range n.Sysctls {
			if !sysctlRE.MatchString(k) || strings.Contains(k, "..") {
				return fmt.Errorf("lab: %s: sysctls: %q is not a sysctl key", who, k)
			}
			if strings.ContainsAny(v, "\n") {
				return fmt.Errorf("lab: %s: sysctls: %s: value %q has a newline", who, k, v)
			}
		}
		for j := range n.Routes {
			if err := n.Routes[j].check(fmt.Sprintf("%s routes[%d]", who, j), n.Name, ifaces); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxLinkDelay bounds delay and jitter: beyond it a lab link is a typo.
const maxLinkDelay = 10 * time.Second

func (l *Link) checkShape(who string) error {
	dur := func(key, s string) (time.Duration, error) {
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			return 0, fmt.Errorf("lab: %s: %s: %q is not a duration (write e.g. 10ms)", who, key, s)
		case d < 0:
			return 0, fmt.Errorf("lab: %s: %s: %s is negative", who, key, s)
		case d > maxLinkDelay:
			return 0, fmt.Errorf("lab: %s: %s: %s is longer than %v", who, key, s, maxLinkDelay)
		}
		return d, nil
	}
	var err error
	if l.delay, err = dur("delay", l.Delay); err != nil {
		return err
	}
	if l.jitter, err = dur("jitter", l.Jitter); err != nil {
		return err
	}
	l.loss = 0
	if l.Loss != "" {
		num, ok := strings.CutSuffix(strings.TrimSpace(l.Loss), "%")
		if !ok {
			return fmt.Errorf("lab: %s: loss: %q is not a percentage (write e.g. 0.1%%)", who, l.Loss)
		}
		pct, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || pct < 0 || pct > 100 || pct != pct {
			return fmt.Errorf("lab: %s: loss: %q is not a percentage from 0%% to 100%%", who, l.Loss)
		}
		l.loss = pct / 100
	}
	if l.Queue < 0 || l.Queue > maxDelayQueue {
		return fmt.Errorf("lab: %s: queue: %d out of range (0..%d)", who, l.Queue, maxDelayQueue)
	}
	if !l.Delayed() && (l.Queue != 0 || l.Seed != 0) {
		return fmt.Errorf("lab: %s: queue and seed apply only to a link with delay, jitter or loss", who)
	}
	return nil
}

func (r *Route) check(who, node string, ifaces map[string]string) error {
	var err error
	if r.Via != "" {
		if r.via, err = netip.ParseAddr(r.Via); err != nil {
			return fmt.Errorf("lab: %s: via: %q is not an address", who, r.Via)
		}
	} else if r.Dev == "" {
		return fmt.Errorf("lab: %s: via or dev is needed", who)
	}
	if r.Dev != "" {
		if _, ok := ifaces[node+"/"+r.Dev]; !ok {
			return fmt.Errorf("lab: %s: dev: node %s has no interface %q", who, node, r.Dev)
		}
	}
	if r.Src != "" {
		if r.src, err = netip.ParseAddr(r.Src); err != nil {
			return fmt.Errorf("lab: %s: src: %q is not an address", who, r.Src)
		}
	}
	switch r.To {
	case "":
		return fmt.Errorf("lab: %s: to: missing", who)
	case "default":
		if !r.via.IsValid() {
			return fmt.Errorf("lab: %s: to: \"default\" needs via (or write default4/default6)", who)
		}
		r.dst = netip.PrefixFrom(unspecified(r.via.Is4()), 0)
	case "default4":
		r.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case "default6":
		r.dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	default:
		if r.dst, err = netip.ParsePrefix(r.To); err != nil {
			return fmt.Errorf("lab: %s: to: %q is not a prefix", who, r.To)
		}
		if r.dst != r.dst.Masked() {
			return fmt.Errorf("lab: %s: to: %q has host bits set (want %v)", who, r.To, r.dst.Masked())
		}
	}
	is4 := r.dst.Addr().Is4()
	if r.via.IsValid() && r.via.Is4() != is4 {
		return fmt.Errorf("lab: %s: via %v and to %v are of different families", who, r.via, r.dst)
	}
	if r.src.IsValid() && r.src.Is4() != is4 {
		return fmt.Errorf("lab: %s: src %v and to %v are of different families", who, r.src, r.dst)
	}
	if r.Metric < 0 {
		return fmt.Errorf("lab: %s: metric: %d is negative", who, r.Metric)
	}
	return nil
}

var (
	unknownFieldRE = regexp.MustCompile(`^(line \d+): field (\S+) not found in type lab\.(\w+)$`)
	typeNames      = map[string]string{
		"Topology": "at the top level", "Node": "in a node", "Link": "in a link",
		"Bridge": "in a bridge", "End": "in a link end or bridge port", "Route": "in a route",
	}
)

// friendlyYAML rewrites the decoder's errors in the file's terms.
func friendlyYAML(te *yaml.TypeError) string {
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
			e = fmt.Sprintf("%s: unknown key %q %s", m[1], m[2], typeNames[m[3]])
		}
		msgs[i] = e
	}
	return strings.Join(msgs, "; ")
}

func checkName(where, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("lab: %s: name: missing", where)
	case len(name) > MaxNodeName:
		return fmt.Errorf("lab: %s: name %q: longer than %d bytes", where, name, MaxNodeName)
	case !nodeNameRE.MatchString(name):
		return fmt.Errorf("lab: %s: name %q: use lower-case letters, digits and '-'", where, name)
	}
	return nil
}

func unspecified(v4 bool) netip.Addr {
	if v4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}
