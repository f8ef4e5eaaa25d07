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
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := ns.Command(os.Args[0], "-test.run=^TestBGPDiscoveryHelper$")
	c.Env = append(os.Environ(), bgpHelperEnv+"="+string(j))
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
	bgpdtest.Start(t, tr, "frr defaults traditional\nhostname transit\nrouter bgp 65010\n bgp router-id 10.0.0.10\n"+
		" no bgp ebgp-requires-policy\n"+nb(addrA, 65001)+nb(addrB, 65002)+
		" address-family ipv4 unicast\n"+
		fmt.Sprintf("  neighbor %v send-community extended\n  neighbor %v send-community extended\n", addrA, addrB)+
		" exit-address-family\n", netip.Addr{})

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
	if _, st := sb.entries(t); st.Malformed != 0 || st.Withdrawals == 0 || st.Learned != 0 {
		t.Fatalf("B's counters %+v", st)
	}
	if _, ok := learned(sa, pB); !ok {
		t.Fatal("A lost B's prefix")
	}
}
