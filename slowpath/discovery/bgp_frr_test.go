package discovery_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/bgpdtest"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/bgp"
	"github.com/rloc-router/rloc/slowpath/discovery"
)

// bgpHelperEnv holds the JSON configuration of TestBGPDiscoveryHelper.
const bgpHelperEnv = "RLOC_BGPDISC_HELPER"

// TestBGPDiscoveryHelper is one mapping system's border speaker of
// TestBGPDiscoveryAcrossFRR, run by it as a child process inside a
// namespace (GoBGP's sockets belong to the process's namespace). It reads
// commands on stdin, one a line, and answers each with one line on
// stdout: "entries" (the table as JSON), "withdraw <prefix>" ("ok" or the
// error). It ends when stdin closes.
func TestBGPDiscoveryHelper(t *testing.T) {
	env := os.Getenv(bgpHelperEnv)
	if env == "" {
		t.Skip("run by TestBGPDiscoveryAcrossFRR")
	}
	var cfg slowpath.DiscoveryBGP
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	b, err := discovery.StartBGP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "entries":
			j, _ := json.Marshal(struct {
				Entries []discovery.BGPEntry
				Stats   discovery.BGPStats
			}{b.Entries(), b.Stats()})
			fmt.Printf("%s\n", j)
		case "withdraw":
			p, err := netip.ParsePrefix(arg)
			if err == nil {
				err = b.Withdraw(p)
			}
			fmt.Printf("%v\n", err)
		default:
			fmt.Printf("unknown command %q\n", cmd)
		}
	}
}

// speaker is a running TestBGPDiscoveryHelper.
type speaker struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

// ask sends one command and returns the answer line.
func (s *speaker) ask(t *testing.T, cmd string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintln(s.in, cmd); err != nil {
		t.Fatalf("helper %q: %v", cmd, err)
	}
	l, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper %q: %v", cmd, err)
	}
	return strings.TrimSpace(l)
}

// entries returns the helper's table and counters.
func (s *speaker) entries(t *testing.T) ([]discovery.BGPEntry, discovery.BGPStats) {
	t.Helper()
	var v struct {
		Entries []discovery.BGPEntry
		Stats   discovery.BGPStats
	}
	l := s.ask(t, "entries")
	if err := json.Unmarshal([]byte(l), &v); err != nil {
		t.Fatalf("helper's entries %q: %v", l, err)
	}
	return v.Entries, v.Stats
}

// startSpeaker runs TestBGPDiscoveryHelper in ns with cfg.
func startSpeaker(t *testing.T, ns *netns.NS, cfg slowpath.DiscoveryBGP) *speaker {
	t.Helper()
	return startHelper(t, ns, "TestBGPDiscoveryHelper", bgpHelperEnv, cfg)
}

// startHelper runs the helper test name in ns, with v as JSON in the
// environment variable env.
func startHelper(t *testing.T, ns *netns.NS, name, env string, v any) *speaker {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c := ns.Command(os.Args[0], "-test.run=^"+name+"$")
	c.Env = append(os.Environ(), env+"="+string(j))
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, out); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
		}
		_ = c.Wait()
	})
	return &speaker{in: in, out: bufio.NewReader(out)}
}

// rawHelperEnv holds the JSON configuration of TestBGPRawHelper.
const rawHelperEnv = "RLOC_BGPRAW_HELPER"

// rawSpeaker is what TestBGPRawHelper runs: a plain BGP speaker with one
// neighbour announcing routes as given, communities included.
type rawSpeaker struct {
	Config   bgp.Config
	Neighbor bgp.Neighbor
	Routes   []bgp.Route
}

// TestBGPRawHelper is a BGP speaker of TestBGPDiscoveryAcrossFRR that
// announces what a mapping system's speaker would not: routes carrying a
// malformed Mapping System community. It ends when stdin closes.
func TestBGPRawHelper(t *testing.T) {
	env := os.Getenv(rawHelperEnv)
	if env == "" {
		t.Skip("run by TestBGPDiscoveryAcrossFRR")
	}
	var cfg rawSpeaker
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	sp, err := bgp.Start(cfg.Config, bgp.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	if err := sp.AddNeighbor(cfg.Neighbor); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Routes {
		if err := sp.Announce(r); err != nil {
			t.Fatal(err)
		}
	}
	// Announced; run until the test closes stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestBGPDiscoveryAcrossFRR: mapping system A (AS 65001) advertises its
// EID prefix with the Mapping System community through FRR's bgpd, a
// transit AS (65010) in its own namespace, to mapping system B (AS 65002);
// B learns the prefix with A's contact address and the AS path through
// the transit, and forgets it when A withdraws it. B's own advertisement
// reaches A the same way.
func TestBGPDiscoveryAcrossFRR(t *testing.T) {
	bgpdtest.Require(t)
	a, tr, b := netnstest.New(t, "bdA"), netnstest.New(t, "bdT"), netnstest.New(t, "bdB")
	addrA, addrTA := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	addrTB, addrB := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	if err := netns.Veth(a, "da", tr, "dta"); err != nil {
		t.Fatal(err)
	}
	if err := netns.Veth(tr, "dtb", b, "db"); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		ns  *netns.NS
		dev string
		a   netip.Addr
	}{{a, "da", addrA}, {tr, "dta", addrTA}, {tr, "dtb", addrTB}, {b, "db", addrB}} {
		if err := x.ns.AddAddr(x.dev, netip.PrefixFrom(x.a, 24)); err != nil {
			t.Fatal(err)
		}
	}

	// bgpd in T: no zebra, its own pid and vty paths.
	nb := func(addr netip.Addr, asn int) string {
		return fmt.Sprintf(" neighbor %v remote-as %d\n neighbor %v timers 3 9\n neighbor %v timers connect 1\n", addr, asn, addr, addr)
	}
	// A second speaker beside A (AS 65003) sends what a mapping system's
	// speaker would not: prefixes whose Mapping System community names no
	// usable contact.
	addrX := netip.MustParseAddr("192.0.2.3")
	if err := a.AddAddr("da", netip.PrefixFrom(addrX, 24)); err != nil {
		t.Fatal(err)
	}
	bgpdtest.Start(t, tr, "frr defaults traditional\nhostname transit\nrouter bgp 65010\n bgp router-id 10.0.0.10\n"+
		" no bgp ebgp-requires-policy\n"+nb(addrA, 65001)+nb(addrB, 65002)+nb(addrX, 65003)+
		" address-family ipv4 unicast\n"+
		fmt.Sprintf("  neighbor %v send-community extended\n  neighbor %v send-community extended\n", addrA, addrB)+
		" exit-address-family\n", netip.Addr{})
	pBad := []netip.Prefix{netip.MustParsePrefix("10.66.0.0/16"), netip.MustParsePrefix("10.67.0.0/16")}
	badComm := func(contact [4]byte) bgp.ExtCommunity {
		return bgp.ExtCommunity{discovery.MSCommType, discovery.MSCommSubType, contact[0], contact[1], contact[2], contact[3], 0, 0}
	}
	startHelper(t, a, "TestBGPRawHelper", rawHelperEnv, rawSpeaker{
		Config:   bgp.Config{ASN: 65003, RouterID: netip.MustParseAddr("10.0.0.3"), Port: -1},
		Neighbor: bgp.Neighbor{Address: addrTA, ASN: 65010, Local: addrX, HoldTime: 9 * time.Second, ConnectRetry: time.Second},
		Routes: []bgp.Route{
			{Prefix: pBad[0], ExtCommunities: []bgp.ExtCommunity{badComm([4]byte{224, 0, 0, 1})}}, // multicast contact
			{Prefix: pBad[1], ExtCommunities: []bgp.ExtCommunity{badComm([4]byte{127, 0, 0, 1})}}, // loopback contact
		}})

	pA, pB := netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")
	contactA, contactB := netip.MustParseAddrPort("192.0.2.100:4342"), netip.MustParseAddrPort("198.51.100.200:14342")
	sa := startSpeaker(t, a, slowpath.DiscoveryBGP{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"),
		Neighbors: []slowpath.DiscoveryBGPNeighbor{{Address: addrTA, ASN: 65010, Local: addrA, HoldTime: 9 * time.Second, ConnectRetry: time.Second}},
		Advertise: []netip.Prefix{pA}, Contact: contactA})
	sb := startSpeaker(t, b, slowpath.DiscoveryBGP{ASN: 65002, RouterID: netip.MustParseAddr("10.0.0.2"),
		Neighbors: []slowpath.DiscoveryBGPNeighbor{{Address: addrTB, ASN: 65010, Local: addrB, HoldTime: 9 * time.Second, ConnectRetry: time.Second}},
		Advertise: []netip.Prefix{pB}, Contact: contactB})

	learned := func(s *speaker, p netip.Prefix) (discovery.BGPEntry, bool) {
		es, _ := s.entries(t)
		for _, e := range es {
			if e.Prefix == p && !e.Self {
				return e, true
			}
		}
		return discovery.BGPEntry{}, false
	}
	testkit.WaitFor(t, "B learns A's prefix through bgpd", func() error {
		if e, ok := learned(sb, pA); !ok {
			es, st := sb.entries(t)
			return fmt.Errorf("B's table %+v %+v", es, st)
		} else if e.Contact != contactA || e.Neighbor != addrTB || fmt.Sprint(e.ASPath) != "[65010 65001]" {
			return fmt.Errorf("B's entry %+v", e)
		}
		return nil
	})
	testkit.WaitFor(t, "A learns B's prefix through bgpd", func() error {
		if e, ok := learned(sa, pB); !ok || e.Contact != contactB || fmt.Sprint(e.ASPath) != "[65010 65002]" {
			return fmt.Errorf("A's entry %+v %v", e, ok)
		}
		return nil
	})
	if got := sa.ask(t, "withdraw "+pA.String()); got != "<nil>" {
		t.Fatalf("withdraw: %s", got)
	}
	testkit.WaitFor(t, "B forgets A's withdrawn prefix", func() error {
		if e, ok := learned(sb, pA); ok {
			return fmt.Errorf("B still has %+v", e)
		}
		return nil
	})
	// The malformed communities crossed bgpd intact: B counted both and
	// learned neither prefix.
	testkit.WaitFor(t, "B counts the malformed communities", func() error {
		if _, st := sb.entries(t); st.Malformed != 2 {
			return fmt.Errorf("B's counters %+v", st)
		}
		return nil
	})
	for _, p := range pBad {
		if e, ok := learned(sb, p); ok {
			t.Fatalf("B learned %+v from a malformed community", e)
		}
	}
	if _, st := sb.entries(t); st.Withdrawals == 0 || st.Learned != 0 {
		t.Fatalf("B's counters %+v", st)
	}
	if _, ok := learned(sa, pB); !ok {
		t.Fatal("A lost B's prefix")
	}
}
