package router

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rloc-router/rloc/internal/render"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// startStatusDDT starts a DDT node (root, delegating 10.1.0.0/16 to a
// silent Map-Server on 127.0.0.9) and a DDT Map-Resolver under it with its
// status page on loopback.
func startStatusDDT(t *testing.T) (node, mr *Router) {
	t.Helper()
	nc := ddtRouterConfig(t)
	nc.DDT.Delegations[0].Targets[0].Addr = netip.MustParseAddr("127.0.0.9") // loopback: nothing listens
	node, err := Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	mr, err = Start(Config{Name: "ddt-mr", Roles: Roles{MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mr.sock")},
		Status:  StatusOptions{Listen: "127.0.0.1:0"},
		MapResolver: MapResolverOptions{DDTRoots: []netip.AddrPort{node.Engine().Addr()},
			DDT: slowpath.DDTResolverConfig{RetransmitInterval: time.Minute}}}) // pending for the test's life
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mr.Stop)
	return node, mr
}

// resolveThrough sends mr an encapsulated Map-Request for eid, which it
// resolves through its DDT roots.
func resolveThrough(t *testing.T, mr *Router, eid string, nonce byte) {
	t.Helper()
	c := udpLocal(t)
	req := wire.MapRequest{Nonce: wire.Nonce{nonce}, ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr("127.0.0.1"))},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr(eid))}}}
	inner, _ := req.Append(nil)
	ecm := wire.ECM{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr(eid),
		SrcPort: c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port(), DstPort: 4342, TTL: 64, Message: inner}
	b, _ := ecm.Append(nil)
	if _, err := c.WriteToUDPAddrPort(b, mr.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
}

// mappingSystemNodes returns the data-id of every node drawn in the
// page's mapping-system section.
func mappingSystemNodes(t *testing.T, page []byte) []string {
	t.Helper()
	ids, _ := domByID(t, page)
	sec := ids["mapping-system"]
	if sec == nil {
		return nil
	}
	var out []string
	for n := range sec.Descendants() {
		if n.Type == html.ElementNode && n.Data == "g" && strings.HasPrefix(attr(n, "class"), "node ") {
			out = append(out, attr(n, "data-id"))
		}
	}
	return out
}

// listenEvents opens r's status event stream (for 20 s), waits until the
// router counts it, and returns a function that returns its next event
// line (failing the test when none comes).
func listenEvents(t *testing.T, r *Router) func(what string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.StatusAddr()+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	testkit.WaitFor(t, "the status page's event subscription", func() error {
		if !r.events.active() {
			return fmt.Errorf("no subscriber")
		}
		return nil
	})
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		rd := bufio.NewReader(resp.Body)
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			if l == "\n" {
				continue
			}
			select {
			case lines <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			return l
		case <-ctx.Done():
			t.Fatalf("%s: no event", what)
		}
		return ""
	}
}

// TestStatusEventsDDTReferrals: while a status page listens, a DDT
// Map-Resolver's referral cache changing (a referral cached, then the
// cache flushed) sends a ddt-referrals-changed event on /events, which
// makes the page fetch itself again, and the page then draws the new
// referral tree.
func TestStatusEventsDDTReferrals(t *testing.T) {
	_, mr := startStatusDDT(t)
	next := listenEvents(t, mr)
	resolveThrough(t, mr, "10.1.2.3", 7)
	if l := next("the referral cached"); l != "data: "+EventDDTReferrals+"\n" {
		t.Fatalf("event %q, want %q", l, EventDDTReferrals)
	}
	_, page := getStatus(t, mr, "/")
	if got := strings.Join(mappingSystemNodes(t, page), " "); got != "self roots r/0/10.1.0.0/16/MS-REFERRAL" {
		t.Errorf("after the event the page draws %q", got)
	}
	if code := call(t, mr, "DELETE", "/v1/ddt/referrals", nil, nil); code != 200 {
		t.Fatalf("DELETE /v1/ddt/referrals: %d", code)
	}
	if l := next("the cache flushed"); l != "data: "+EventDDTReferrals+"\n" {
		t.Fatalf("event %q, want %q", l, EventDDTReferrals)
	}
	_, page = getStatus(t, mr, "/")
	if got := strings.Join(mappingSystemNodes(t, page), " "); got != "self roots" {
		t.Errorf("after the flush the page draws %q", got)
	}
}

// TestMappingSystemWatch: the watcher publishes a picture's event only
// when what it draws changes (an MSX copy growing, an ALT session coming
// up, a DDT referral cached), never for the first sight of a picture or an
// unchanged one.
func TestMappingSystemWatch(t *testing.T) {
	r := &Router{events: newHub()}
	var w msWatch
	ch, cancel := r.events.subscribe()
	defer cancel()
	ag := MSXAgreementInfo{Name: "d2", Mode: "copy", Peers: []string{"192.0.2.9:4342"}, Copy: 1}
	up := ALTView{Neighbors: []ALTNeighborView{{Peer: netip.MustParseAddr("10.255.0.2"), Remote: netip.MustParseAddr("192.0.2.2"), ASN: 65002, State: "active"}}}
	ref := DDTResolverInfo{Roots: []string{"127.0.0.1:4342"}}
	for _, step := range []struct {
		last *uint64
		kind string
		g    func() render.Graph
		want bool
	}{
		{&w.msx, EventMSX, func() render.Graph { return MSXPicture([]MSXAgreementInfo{ag}) }, false}, // first sight
		{&w.msx, EventMSX, func() render.Graph { return MSXPicture([]MSXAgreementInfo{ag}) }, false}, // unchanged
		{&w.msx, EventMSX, func() render.Graph { ag.Copy = 2; return MSXPicture([]MSXAgreementInfo{ag}) }, true},
		{&w.msx, EventMSX, func() render.Graph { ag.Complete = true; return MSXPicture([]MSXAgreementInfo{ag}) }, true},
		{&w.alt, EventALT, func() render.Graph { return ALTPicture(up) }, false},
		{&w.alt, EventALT, func() render.Graph { up.Neighbors[0].State = "established"; return ALTPicture(up) }, true},
		{&w.ddt, EventDDTReferrals, func() render.Graph { return DDTReferralsPicture(ref) }, false},
		{&w.ddt, EventDDTReferrals, func() render.Graph {
			ref.Referrals, ref.Cached = []DDTReferralInfo{{EID: "10.1.0.0/16", Type: "MS-REFERRAL"}}, 1
			return DDTReferralsPicture(ref)
		}, true},
		{&w.ddt, EventDDTReferrals, func() render.Graph { return DDTReferralsPicture(ref) }, false},
	} {
		g := step.g()
		w.check(r, step.last, step.kind, g)
		select {
		case ev := <-ch:
			if !step.want || ev.Kind != step.kind || ev.Detail != g.Title {
				t.Errorf("%s %q: event %+v, want one: %v", step.kind, g.Title, ev, step.want)
			}
		default:
			if step.want {
				t.Errorf("%s %q: no event", step.kind, g.Title)
			}
		}
	}
}

// TestStatusEventsMSX: while a status page listens, a Map-Resolver whose
// agreement copies a peer mapping system (a Map-Server in process on
// loopback) and subscribes to it sends msx-changed when the peer's new
// registration reaches its copy, and the page then draws the copy.
func TestStatusEventsMSX(t *testing.T) {
	key := slowpath.AuthKey{KeyID: 7, Alg: wire.AuthHMACSHA256128, Secret: "interconnect"}
	provider, err := Start(Config{Name: "msx-provider", Roles: Roles{MapServer: true, MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites:   []slowpath.SiteConfig{testSite()},
		MSX: slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{{Name: "d1", Key: key, Mode: slowpath.MSXModeNone,
			Peers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(provider.Stop)
	r, err := Start(Config{Name: "msx-requester", Roles: Roles{MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Status:  StatusOptions{Listen: "127.0.0.1:0"},
		MSX: slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{{Name: "d2", Key: key, Mode: slowpath.MSXModeCopy,
			Peers: []netip.AddrPort{provider.Engine().Addr()}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	testkit.WaitFor(t, "the empty copy, complete and subscribed", func() error {
		if l, _ := r.MSXAgreements(); len(l) != 1 || l[0].Copy != 0 || !l[0].Complete || l[0].Subscription == 0 {
			return fmt.Errorf("agreements %+v", l)
		}
		return nil
	})
	next := listenEvents(t, r)
	// The watcher last saw the empty copy (at start or at a poll since):
	// the registration reaching the copy is a change it must report.
	c := udpLocal(t)
	register(t, provider, c, testSecret, true, 1)
	readType(t, c, wire.TypeMapNotify)
	for next("the copy") != "data: "+EventMSX+"\n" {
	}
	testkit.WaitFor(t, "the copy of the peer's registration", func() error {
		if l, _ := r.MSXAgreements(); len(l) != 1 || l[0].Copy != 1 {
			return fmt.Errorf("agreements %+v", l)
		}
		return nil
	})
	_, page := getStatus(t, r, "/")
	if got := strings.Join(mappingSystemNodes(t, page), " "); got != "self a/d2 p/d2/"+provider.Engine().Addr().String() {
		t.Errorf("the page draws %q", got)
	}
	if !strings.Contains(string(page), "copy: 1 mappings (complete") {
		t.Errorf("the page does not show the copy:\n%s", page)
	}
}
