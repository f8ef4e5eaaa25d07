package bgp_test

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
	"github.com/rloc-router/rloc/slowpath/alt/gre"
	"github.com/rloc-router/rloc/slowpath/bgp"
)

// The addresses of the FRR test: underlay on a veth, inner on the tunnel.
var (
	frrUnderA, frrUnderB = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	frrInnerA, frrInnerB = netip.MustParsePrefix("10.255.0.0/31"), netip.MustParsePrefix("10.255.0.1/31")
	frrPrefixA           = netip.MustParsePrefix("192.168.1.0/24") // rloc announces it
	frrPrefixB           = netip.MustParsePrefix("192.168.2.0/24") // bgpd announces it
)

const helperEnv = "RLOC_BGP_FRR_HELPER"

// TestFRRHelper is the rloc side of TestFRRSession, run by it as a child
// process inside namespace A (GoBGP's sockets belong to the process's
// namespace): a GRE tunnel to B, a speaker peering with bgpd over it,
// announcing frrPrefixA. It prints the session state and the best paths
// on stdout and ends when stdin closes.
func TestFRRHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestFRRSession")
	}
	d, err := gre.Open(gre.Config{Name: "alt0", Local: frrUnderA, Tunnels: []gre.TunnelConfig{
		{Remote: frrUnderB, Inner: frrInnerA, Peer: frrInnerB.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var mu sync.Mutex
	say := func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(f+"\n", a...)
	}
	sp, err := bgp.Start(bgp.Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), Port: -1}, bgp.Handlers{
		Session: func(p bgp.Peer) { say("session %v %s", p.Address, p.State) },
		Best: func(r bgp.Route) {
			say("best %v withdrawn=%v aspath=%v nexthop=%v", r.Prefix, r.Withdrawn, r.ASPath, r.NextHop)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	if err := sp.AddNeighbor(bgp.Neighbor{Address: frrInnerB.Addr(), ASN: 65002, Local: frrInnerA.Addr(),
		HoldTime: 9 * time.Second, ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Announce(bgp.Route{Prefix: frrPrefixA}); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	s := d.Stats()
	say("gre rx=%d tx=%d dropped=%v", s.Tunnels[0].RxPackets, s.Tunnels[0].TxPackets, s.Dropped)
}

// TestFRRSession checks the BGP component against an independent
// implementation over rloc's user-space GRE: FRR's bgpd (without zebra)
// in namespace B behind a GRE tunnel that rloc's gre package terminates
// there, GoBGP in namespace A. The prefix rloc announces appears in
// bgpd's RIB (vtysh) and bgpd's prefix reaches rloc's best paths.
func TestFRRSession(t *testing.T) {
	bgpdtest.Require(t)
	vtysh := testkit.Tool(t, "vtysh")
	a, b := netnstest.New(t, "bgpA"), netnstest.New(t, "bgpB")
	if err := netns.Veth(a, "ba", b, "bb"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("ba", netip.PrefixFrom(frrUnderA, 24)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr("bb", netip.PrefixFrom(frrUnderB, 24)); err != nil {
		t.Fatal(err)
	}
	var db *gre.Device
	err := b.Do(func() (err error) {
		db, err = gre.Open(gre.Config{Name: "alt0", Local: frrUnderB, Tunnels: []gre.TunnelConfig{
			{Remote: frrUnderA, Inner: frrInnerB, Peer: frrInnerA.Addr()}}})
		return err
	})
	testkit.Require(t, "a TUN device and a raw GRE socket", err)
	t.Cleanup(func() { db.Close() })

	// bgpd in B: no zebra, no kernel routes, its own pid and vty paths.
	bd := bgpdtest.Start(t, b, fmt.Sprintf(`frr defaults traditional
hostname alt-frr
router bgp 65002
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor %v remote-as 65001
 neighbor %v timers 3 9
 neighbor %v timers connect 1
 address-family ipv4 unicast
  network %v
 exit-address-family
`, frrInnerA.Addr(), frrInnerA.Addr(), frrInnerA.Addr(), frrPrefixB), frrInnerB.Addr())
	vty := bd.VTY

	// rloc's side in A, a child process of this test binary.
	hc := a.Command(os.Args[0], "-test.run=^TestFRRHelper$")
	hc.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := hc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := hc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	hc.Stderr = os.Stderr
	if err := hc.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = hc.Process.Kill()
		}
		_ = hc.Wait()
		mu.Lock()
		defer mu.Unlock()
		t.Logf("rloc's side:\n%s", strings.Join(lines, "\n"))
	})
	seen := func(prefix string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return nil
			}
		}
		return fmt.Errorf("no %q yet in %q", prefix, lines)
	}
	testkit.WaitFor(t, "the session with bgpd established on rloc's side", func() error {
		return seen(fmt.Sprintf("session %v established", frrInnerB.Addr()))
	})
	testkit.WaitFor(t, "bgpd's prefix in rloc's best paths", func() error {
		return seen(fmt.Sprintf("best %v withdrawn=false aspath=[65002] nexthop=%v", frrPrefixB, frrInnerB.Addr()))
	})
	testkit.WaitFor(t, "rloc's prefix in bgpd's RIB", func() error {
		out, err := b.Command(vtysh, "--vty_socket", vty, "-d", "bgpd", "-c", "show bgp ipv4 unicast json").CombinedOutput()
		if err != nil {
			return fmt.Errorf("vtysh: %v: %s", err, out)
		}
		var rib struct {
			Routes map[string][]struct {
				Valid   bool   `json:"valid"`
				Best    bool   `json:"bestpath"`
				Path    string `json:"path"`
				PeerID  string `json:"peerId"`
				NextHop []struct {
					IP string `json:"ip"`
				} `json:"nexthops"`
			} `json:"routes"`
		}
		if err := json.Unmarshal(out, &rib); err != nil {
			return fmt.Errorf("vtysh json: %v: %s", err, out)
		}
		paths := rib.Routes[frrPrefixA.String()]
		if len(paths) != 1 || !paths[0].Valid || paths[0].Path != "65001" || paths[0].PeerID != frrInnerA.Addr().String() {
			return fmt.Errorf("bgpd's paths for %v: %+v (%s)", frrPrefixA, paths, out)
		}
		return nil
	})
	if s := db.Stats(); s.Tunnels[0].RxPackets == 0 || len(s.Dropped) != 0 {
		t.Fatalf("B's tunnel: %+v", s)
	}
}
