package e2e

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath/cpnp"
)

// The cross-domain steps of TestTwoDomains (issue 16): the mapping
// systems, configured only with a CPNP identity and a trust list of public
// keys (no address, no prefix, no interconnect agreement of the other
// domain), negotiate from the contacts BGP discovery learned, provision
// the interconnect, copy each other's tables, and the sites of the two
// domains ping each other.

// tdCPNPYAML is the cpnp section of d's mapping system: its identity, the
// other domain's public key, its own prefixes offered, copies ordered.
func tdCPNPYAML(d *tdDomain) string {
	other := &tdDomains[0]
	if other.MS == d.MS {
		other = &tdDomains[1]
	}
	seed, _ := cpnpIdentity(d.MS)
	_, opub := cpnpIdentity(other.MS)
	var own []string
	for _, p := range d.Prefixes() {
		own = append(own, fmt.Sprintf("{eid: %v}", p))
	}
	return fmt.Sprintf(`cpnp:
  identity: %s
  private_key: "%s"
  retransmit_interval: 200ms
  retry_interval: 2s
  peers: [{name: %s, public_key: "%s"}]
  offer: {prefixes: [%s]}
  order: {mode: copy}
`, d.MS, seed, other.MS, opub, strings.Join(own, ", "))
}

// tdTimeline is what a poller saw of domain A's mapping system from cold
// start: when it had learned domain B's prefixes from BGP, when every
// site of both domains had registered (the xTRs learn their Map-Server
// from OSPF first), when A had completed its copy (and B its copy of A),
// and when h-a1's first ping to h-b1 was answered.
type tdTimeline struct {
	mu                                                       sync.Mutex
	learned, registered, agreed, pulled, copied, firstAnswer time.Duration
}

// tdWatch polls domain A's mapping system every 20 ms from cold start
// (concurrently with the test's steps) and records the timeline; it stops
// with the returned function.
func tdWatch(td *twoDomains) (*tdTimeline, func()) {
	tl := &tdTimeline{}
	stop := make(chan struct{})
	done := make(chan struct{})
	a, b := &tdDomains[0], &tdDomains[1]
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			now := time.Since(td.Start)
			tl.mu.Lock()
			step := tl.learned == 0 || tl.agreed == 0 || tl.copied == 0
			tl.mu.Unlock()
			if !step {
				if _, err := td.lab.Ping(a.Sites[0].Host, b.Sites[0].HostAddr, 1, 5*time.Second); err == nil {
					tl.mu.Lock()
					tl.firstAnswer = time.Since(td.Start)
					tl.mu.Unlock()
				}
				return
			}
			var d router.DiscoveryInfo
			var c router.CPNPInfo
			var ags, bags []router.MSXAgreementInfo
			if td.get(a.MS, "/v1/discovery", &d) != nil || td.get(a.MS, "/v1/cpnp", &c) != nil {
				continue
			}
			_ = td.get(a.MS, "/v1/msx/agreements", &ags)
			_ = td.get(b.MS, "/v1/msx/agreements", &bags)
			var regsA, regsB []router.RegistrationInfo
			_ = td.get(a.MS, "/v1/registrations", &regsA)
			_ = td.get(b.MS, "/v1/registrations", &regsB)
			// The ping waits for B's copy of A too (h-b1's answer is
			// resolved there): a negative answer cached earlier would
			// spoil the test's pings.
			bCopied := slices.ContainsFunc(bags, func(x router.MSXAgreementInfo) bool {
				return x.Mode == "copy" && x.Complete && x.Copy == len(a.Prefixes())
			})
			tl.mu.Lock()
			if tl.learned == 0 && d.BGP != nil && countLearned(d.BGP, b) == len(b.Prefixes()) {
				tl.learned = now
			}
			if tl.registered == 0 && len(regsA) == len(a.Sites) && len(regsB) == len(b.Sites) {
				tl.registered = now
			}
			for _, x := range c.Agreements {
				if tl.agreed == 0 && x.Role == "customer" && x.State == "agreed" && x.Interconnect != "" {
					tl.agreed = now
				}
			}
			for _, x := range ags {
				if tl.pulled == 0 && x.Mode == "copy" && x.Counters["pulls_done"] >= 1 {
					tl.pulled = now
				}
				if tl.copied == 0 && bCopied && x.Mode == "copy" && x.Complete && x.Copy == len(b.Prefixes()) {
					tl.copied = now
				}
			}
			tl.mu.Unlock()
		}
	}()
	var once sync.Once
	return tl, func() { once.Do(func() { close(stop); <-done }) }
}

func countLearned(b *router.BGPDiscoveryInfo, other *tdDomain) int {
	n := 0
	for _, e := range b.Prefixes {
		if !e.Self && e.Contact == other.Contact() {
			n++
		}
	}
	return n
}

// tdCapture captures the control traffic crossing the transit (domain
// A's side) into the test's directory.
func tdCapture(td *twoDomains) *lab.Capture {
	c, err := td.lab.Capture("transit", "core-a", "udp port 4342", filepath.Join(td.dir, "transit-core-a.pcap"))
	if err != nil {
		td.t.Fatalf("capture: %v", err)
	}
	return c
}

// tdCrossDomain runs the cross-domain steps after discovery.
func tdCrossDomain(t *testing.T, td *twoDomains, capture *lab.Capture, tl *tdTimeline, stopWatch func()) {
	// (d) CPNP: each mapping system's order to the other is agreed, and so
	// is the other's order to it; each side provisioned its interconnect.
	for i := range tdDomains {
		d := &tdDomains[i]
		td.waitFor(30*time.Second, d.MS+"'s agreements (its order and the other's) agreed", func() bool {
			var c router.CPNPInfo
			if err := td.get(d.MS, "/v1/cpnp", &c); err != nil {
				return false
			}
			roles := map[string]bool{}
			for _, a := range c.Agreements {
				if a.State == "agreed" && a.Interconnect != "" {
					roles[a.Role] = true
				}
			}
			return roles["customer"] && roles["provider"]
		})
	}
	t.Logf("phase: CPNP agreements agreed both ways: %v after start", td.since())
	// (e) The interconnect: each copy holds the other domain's two sites.
	for i := range tdDomains {
		d, other := &tdDomains[i], &tdDomains[1-i]
		td.waitFor(30*time.Second, d.MS+"'s copy of domain "+other.Name, func() bool {
			a := td.msxAgreement(d.MS)
			return a.Mode == "copy" && a.Complete && a.Copy == len(other.Prefixes()) && a.Name == "cpnp-"+other.MS
		})
	}
	t.Logf("phase: interconnect copies complete both ways: %v after start", td.since())
	// (f) Pings between the sites of the two domains.
	for i := range tdDomains {
		d, other := &tdDomains[i], &tdDomains[1-i]
		for _, s := range d.Sites {
			for _, peer := range other.Sites {
				if got, err := td.lab.Ping(s.Host, peer.HostAddr, 1, 5*time.Second); err != nil || got != 1 {
					t.Fatalf("first cross-domain ping %s -> %s: %d/1, %v", s.Host, peer.HostAddr, got, err)
				}
				if got, err := td.lab.Ping(s.Host, peer.HostAddr, 5, 2*time.Second); err != nil || got != 5 {
					t.Fatalf("cross-domain ping %s -> %s: %d/5 answered, %v", s.Host, peer.HostAddr, got, err)
				}
			}
		}
	}
	t.Logf("phase: cross-domain pings answered: %v after start", td.since())
	for i := range tdDomains {
		d := &tdDomains[i]
		if a := td.msxAgreement(d.MS); a.Counters["answered"] < 1 || a.Counters["reply_bad_auth"] != 0 || a.Counters["unauthenticated"] != 0 {
			t.Fatalf("%s's interconnect counters %v", d.MS, a.Counters)
		}
	}
	stopWatch()
	// The negotiation's own times, from ms-a's log: its first quotation,
	// and its order's interconnect provisioned (copy mode).
	started := td.logTime(t, "ms-a", "time=")
	quoted := td.logTime(t, "ms-a", `msg="CPNP quotation sent"`)
	provisioned := td.logTime(t, "ms-a", `msg="interconnect provisioned"`, "mode=copy")
	tl.mu.Lock()
	t.Logf("timeline since cold start (ms-a; API polled every 20 ms, log times to the ms): rlocd started %v, BGP learned %v, "+
		"first quotation %v, order agreed and provisioned %v, first bulk pull done %v, every site of both domains registered %v, "+
		"copies complete both ways %v, first cross-domain ping answered %v",
		started, tl.learned, quoted, provisioned, tl.pulled, tl.registered, tl.copied, tl.firstAnswer)
	t.Logf("FIGURE from ms-a's rlocd start: discovery %v | negotiation %v | bulk copy %v | sites registered (OSPF) at %v | "+
		"copies complete %v after the last registration | first cross-domain resolution at %v",
		quoted-started, provisioned-quoted, tl.pulled-provisioned, tl.registered-started, tl.copied-tl.registered, tl.firstAnswer-started)
	tl.mu.Unlock()

	// (g) The negotiation on the wire, read back with rloc's own parser:
	// every CPNP frame between the domains is signed by the key its
	// identity names, and both orders went QUOTATION, OFFER, ACCEPT, ACK.
	if err := capture.Stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	seen := tdCheckCapture(t, capture.File)
	for _, ms := range []string{"ms-a", "ms-b"} {
		for _, want := range []string{"QUOTATION", "ACCEPT"} {
			if seen[ms+" "+want] == 0 {
				t.Fatalf("no %s from %s on the wire: %v", want, ms, seen)
			}
		}
		for _, want := range []string{"OFFER", "ACK"} {
			if seen[ms+" "+want] == 0 {
				t.Fatalf("no %s from %s on the wire: %v", want, ms, seen)
			}
		}
	}
	t.Logf("CPNP on the wire (transit, core-a): %v", seen)

	// (h) Domain B's mapping system goes away: its BGP session ends, bgpd
	// withdraws its prefixes, ms-a withdraws its order, drops the copy and
	// no longer lists B as a contact.
	a, b := &tdDomains[0], &tdDomains[1]
	td.stop(b.MS, true)
	td.waitFor(30*time.Second, a.MS+" unlearns domain B and drops the interconnect", func() bool {
		var d router.DiscoveryInfo
		var c router.CPNPInfo
		var ags []router.MSXAgreementInfo
		if td.get(a.MS, "/v1/discovery", &d) != nil || td.get(a.MS, "/v1/cpnp", &c) != nil || td.get(a.MS, "/v1/msx/agreements", &ags) != nil {
			return false
		}
		for _, x := range c.Agreements {
			if x.Role == "customer" && x.State == "agreed" {
				return false
			}
		}
		// B's order to A stays agreed on A's provider side (B went away
		// without withdrawing it): the interconnect only serves, holds
		// no copy.
		copying := slices.ContainsFunc(ags, func(x router.MSXAgreementInfo) bool { return x.Mode != "none" || x.Copy != 0 })
		return d.BGP != nil && countLearned(d.BGP, b) == 0 && len(c.Contacts) == 0 && !copying
	})
	t.Logf("phase: domain B gone, its interconnect removed from ms-a: %v after start", td.since())
}

// logTime returns when the first line of node's rlocd log holding every
// one of parts was written, since cold start.
func (td *twoDomains) logTime(t *testing.T, node string, parts ...string) time.Duration {
	t.Helper()
	b, err := os.ReadFile(td.logFile(node))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if !ok {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		if err != nil {
			t.Fatalf("%s log: %v", node, err)
		}
		return at.Sub(td.Start)
	}
	t.Fatalf("%s log lacks %q", node, parts)
	return 0
}

// tdCheckCapture reads the pcap file and checks every CPNP frame in it;
// it counts them by sender and type.
func tdCheckCapture(t *testing.T, file string) map[string]int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[[32]byte]string{}
	for _, d := range tdDomains {
		_, pub := cpnpIdentity(d.MS)
		b, _ := base64.StdEncoding.DecodeString(pub)
		keys[[32]byte(b)] = d.MS
	}
	seen := map[string]int{}
	var m cpnp.Message
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy)
		u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u == nil || len(u.Payload) < 2 || u.Payload[0]>>4 != 15 {
			continue
		}
		if st := uint16(u.Payload[0]&0x0f)<<8 | uint16(u.Payload[1]); st != uint16(cpnp.SubType) {
			continue
		}
		_, signed, sig, err := cpnp.ParseFrame(u.Payload, &m)
		if err != nil {
			t.Fatalf("a CPNP frame on the wire does not parse: %v (%x)", err, u.Payload)
		}
		who := keys[m.Identity]
		if who == "" || !ed25519.Verify(m.Identity[:], signed, sig) {
			t.Fatalf("CPNP %v from %q: identity or signature wrong", m.Type, who)
		}
		if (m.Type == cpnp.Quotation || m.Type == cpnp.Offer) && m.Ephemeral == ([32]byte{}) {
			t.Fatalf("%s's %v carries no ephemeral key", who, m.Type)
		}
		seen[who+" "+m.Type.String()]++
	}
	if len(seen) == 0 {
		t.Fatal("no CPNP frame captured")
	}
	return seen
}
