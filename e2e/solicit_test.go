package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
)

// solicitSection is an itr.solicit section with one peer ITR.
func solicitSection(peer string, onStart bool) string {
	return `solicit: {on_start: ` + strconv.FormatBool(onStart) + `, peers: [{addr: ` + peer +
		`, key: {id: 1, secret: peer-itr-key}}]}`
}

// TestSolicitRestart: xtr1 (ITR of site 1) and the PxTR (a PITR, the
// other ITR that has resolved site 2's EIDs) are peer ITRs. With a ping
// flow h1 -> h2 running, xtr1's rlocd is killed (SIGKILL) and restarted
// with itr.solicit.on_start: it copies the PxTR's map-cache before any
// Map-Request.
//
// Asserted: after the restart xtr1 sends no Map-Request at all (its
// map-request and ECM sent counters stay 0, resolutions 0), its entry for
// 10.2.0.0/24 has RLOC source "solicit", the flow's misses held during the
// solicitation (if the flow's first packet came before the copy) were all
// answered by the copy (misses_resolved 0), and the pings lost form one
// run (the restart gap: from the kill until the new rlocd forwards), every
// later one answered. Then the same restart without solicitation
// (on_start false) does send Map-Requests, so the counters tell the two
// apart. Not asserted: the length of the gap, which is the daemon's start
// time on this machine (logged for both).
func TestSolicitRestart(t *testing.T) {
	n := newNetwork(t)
	ping, err := exec.LookPath("ping")
	if err != nil {
		testkit.Unavailable(t, "no ping binary: %v", err)
	}
	xtr1 := strings.Replace(xtrYAML("xtr1", "1", "key-one", "0s"), "retransmit_interval: 200ms}",
		"retransmit_interval: 200ms, "+solicitSection("192.0.2.3", true)+"}", 1)
	n.start("msmr", msmrYAML("30s"))
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))
	n.start("pxtr", pxtrYAML+"itr: {"+solicitSection("192.0.2.1", false)+"}\n")
	n.start("xtr1", xtr1)
	n.waitFor(10*time.Second, "registrations", func() bool { return len(n.registrations()) == 4 })
	// Both ITRs resolve site 2: the PxTR for nl, xtr1 for h1.
	if got, err := n.lab.Ping("nl", h2v4, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("nl -> h2: %d/3, %v", got, err)
	}
	if got, err := n.lab.Ping("h1", h2v4, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("h1 -> h2: %d/3, %v", got, err)
	}
	if e := cacheEntry(n.mapCache("pxtr"), "10.2.0.0/24"); e == nil || len(e.RLOCs) == 0 {
		t.Fatalf("the PxTR has not resolved 10.2.0.0/24: %+v", n.mapCache("pxtr"))
	}

	with := restartUnderFlow(t, n, ping, xtr1, func() bool {
		var sol router.SolicitInfo
		if err := n.get("xtr1", "/v1/solicit", &sol); err != nil {
			t.Fatal(err)
		}
		return sol.Counters["completed"] == 1 && !sol.Holding
	})
	var sol router.SolicitInfo
	if err := n.get("xtr1", "/v1/solicit", &sol); err != nil {
		t.Fatal(err)
	}
	st := n.stats("xtr1")
	if s := msgCount(st, "map-request").Sent + msgCount(st, "ecm").Sent; s != 0 || st.Control["resolutions"] != 0 {
		t.Fatalf("xtr1 sent %d Map-Requests/ECMs after the restart (%d resolutions): %+v", s, st.Control["resolutions"], st.Messages)
	}
	if sol.Counters["installed"] == 0 || sol.Counters["failed"] != 0 || sol.Counters["misses_resolved"] != 0 {
		t.Fatalf("xtr1 solicitation: %+v", sol)
	}
	if sol.Counters["misses_held"] > 0 && sol.Counters["misses_answered"] != sol.Counters["misses_held"] {
		t.Fatalf("held misses not all answered by the copy: %+v", sol.Counters)
	}
	e := cacheEntry(n.mapCache("xtr1"), "10.2.0.0/24")
	if e == nil || len(e.RLOCs) == 0 {
		t.Fatalf("xtr1 has no copy of 10.2.0.0/24: %+v", n.mapCache("xtr1"))
	}
	for _, r := range e.RLOCs {
		if r.Source != "solicit" {
			t.Fatalf("xtr1's 10.2.0.0/24 RLOC %s has source %q, want solicit", r.Addr, r.Source)
		}
	}
	var psol router.SolicitInfo
	if err := n.get("pxtr", "/v1/solicit", &psol); err != nil {
		t.Fatal(err)
	}
	// Two sessions: xtr1's first start (an empty copy) and the restart.
	if psol.Counters["sessions"] != 2 || psol.Counters["records_sent"] == 0 || psol.Counters["bad_auth"] != 0 {
		t.Fatalf("the PxTR's answering side: %+v", psol)
	}
	t.Logf("with solicitation: %s; solicit counters %v", with, sol.Counters)

	// The same restart without solicitation resolves by Map-Request: the
	// counters above do tell the two apart.
	without := restartUnderFlow(t, n, ping, strings.Replace(xtr1, "on_start: true", "on_start: false", 1), func() bool {
		return n.stats("xtr1").Control["resolutions"] >= 1
	})
	st = n.stats("xtr1")
	if s := msgCount(st, "ecm").Sent; s == 0 {
		t.Fatalf("without solicitation xtr1 sent no Map-Request: %+v", st.Messages)
	}
	t.Logf("without solicitation: %s; %d ECM Map-Requests", without, msgCount(st, "ecm").Sent)
}

// restartUnderFlow kills (SIGKILL) and restarts xtr1 with yaml while
// h1 pings h2 every 50 ms, waits for done and for 40 packets carried by
// the new xtr1, checks that the pings lost form one run (the restart gap)
// after which every ping was answered, and describes the restart.
func restartUnderFlow(t *testing.T, n *network, ping, yaml string, done func() bool) string {
	t.Helper()
	// At most 600 pings (30 s), stopped by SIGINT.
	cmd, err := n.lab.Command("h1", ping, "-n", "-i", "0.05", "-c", "600", "-W", "3", h2v4.String())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pingDone := make(chan error, 1)
	go func() { pingDone <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-pingDone
		}
	}()
	encap := func() uint64 { return n.stats("xtr1").Fastpath["encap"] }
	before := encap()
	n.waitFor(10*time.Second, "the flow through xtr1", func() bool { return encap() >= before+20 })

	kill := time.Now()
	n.stop("xtr1", false)
	n.start("xtr1", yaml)
	ready := time.Now()
	n.waitFor(10*time.Second, "xtr1 to learn the mapping", done)
	learned := time.Now()
	n.waitFor(15*time.Second, "40 packets of the flow through the new xtr1", func() bool { return encap() >= 40 })
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-pingDone:
		stopped = true
	case <-time.After(10 * time.Second):
		t.Fatal("ping did not stop")
	}

	sent, got := pingSeqs(t, out.String())
	lost := []int{}
	for i := 0; i < sent; i++ {
		if !got[i] {
			lost = append(lost, i)
		}
	}
	// The last two may have been in flight when ping was stopped.
	for len(lost) > 0 && lost[len(lost)-1] >= sent-2 {
		lost = lost[:len(lost)-1]
	}
	if len(lost) > 0 && lost[len(lost)-1]-lost[0] != len(lost)-1 {
		t.Fatalf("pings lost outside one run (the restart gap): %v\n%s", lost, out.String())
	}
	if len(lost) > 0 && lost[0] == 0 {
		t.Fatalf("the flow never ran before the kill: %v", lost)
	}
	return fmt.Sprintf("kill -> management socket %v, -> mapping learned %v; pings %d sent, %d answered, lost %v (%v at 50 ms)",
		ready.Sub(kill).Round(time.Millisecond), learned.Sub(kill).Round(time.Millisecond), sent, len(got), lost,
		time.Duration(len(lost))*50*time.Millisecond)
}

// cacheEntry returns the map-cache entry for eid, or nil.
func cacheEntry(es []router.MapCacheEntry, eid string) *router.MapCacheEntry {
	for i := range es {
		if es[i].EID == eid {
			return &es[i]
		}
	}
	return nil
}

var (
	pingReply   = regexp.MustCompile(`bytes from .*icmp_seq=(\d+) `)
	pingSummary = regexp.MustCompile(`(\d+) packets transmitted`)
)

// pingSeqs returns how many echo requests iputils ping sent and the
// sequence numbers (from 0) answered.
func pingSeqs(t *testing.T, out string) (int, map[int]bool) {
	t.Helper()
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ping summary:\n%s", out)
	}
	sent, _ := strconv.Atoi(m[1])
	got := map[int]bool{}
	for _, r := range pingReply.FindAllStringSubmatch(out, -1) {
		s, _ := strconv.Atoi(r[1])
		got[s-1] = true // iputils counts from 1
	}
	return sent, got
}
