package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/internal/buildinfo"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
)

// fake is a management API with canned answers on a Unix socket; it
// records the requests it served.
type fake struct {
	sock string
	mu   sync.Mutex
	reqs []string // "METHOD /path?query body"
}

func (f *fake) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

// count returns how many requests were for path (without query).
func (f *fake) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if strings.HasPrefix(r, method+" "+path+" ") || strings.HasPrefix(r, method+" "+path+"?") {
			n++
		}
	}
	return n
}

var (
	fakeExpires = time.Now().Add(time.Hour)
	fakeCache   = []router.MapCacheEntry{
		{IID: 0, EID: "10.1.0.0/24", RLOCs: []router.RLOCInfo{{Addr: "192.0.2.1", Priority: 1, Weight: 100, Reachable: true}}, TTL: 1440, Expires: fakeExpires},
		{IID: 5, EID: "10.9.0.0/16", RLOCs: []router.RLOCInfo{{Addr: "192.0.2.9", Priority: 1, Weight: 50}}, Static: true},
		{IID: 5, EID: "10.8.0.0/16", Negative: true, Action: "drop", Static: true},
	}
	fakeDB   = []router.DatabaseMapping{{IID: 0, EID: "10.2.0.0/24", RLOCs: []router.RLOCInfo{{Addr: "192.0.2.2", Priority: 1, Weight: 100}}, TTL: "1d"}}
	fakeRegs = []router.RegistrationInfo{{Site: "site1", IID: 0, EID: "10.1.0.0/24", Source: "192.0.2.1:4342", RLOCs: []string{"192.0.2.1"}, Expires: fakeExpires}}
	fakeStat = router.Stats{Name: "fake", Uptime: "1m0s", Messages: []router.MsgCount{{Type: "map-register", MsgStats: slowpath.MsgStats{Received: 3, BadAuth: 1}}},
		Control: map[string]uint64{"registrations": 1}, Cache: cache.Stats{Entries: 3, Negative: 1, Static: 2}}
	fakeTree = router.McastTreeView{IID: 0, Source: "*", Group: "239.1.1.1", Role: "itr", Level: 0, Children: []string{"192.0.2.7"}, Text: "(*, 239.1.1.1) root\n  192.0.2.7\n"}
	fakeOff  = router.OffloadInfo{Encap: router.OffloadDirectionInfo{On: true, Epoch: 7}, Decap: router.OffloadDirectionInfo{On: true, Paused: true},
		Counters: map[string]uint64{"epochs": 6, "pauses": 1}, Total: 3, Flows: []router.OffloadFlowInfo{
			{Direction: "encap", IID: 0, EID: "10.2.0.7", Bucket: 42, RLOC: "192.0.2.2", Interface: "core0", Epoch: 7, Current: true, Packets: 9000},
			{Direction: "decap", IID: 0, EID: "10.1.0.7", RLOC: "2001:db8::1", Over: "ipv6", Interface: "site0", Epoch: 6, Packets: 12}}}
	fakeEvts = []router.Event{{Time: time.Date(2026, 12, 3, 9, 0, 1, 0, time.UTC), Kind: "registration-accepted", EID: "10.1.0.0/24", Source: "192.0.2.1:4342", Detail: "site1"},
		{Time: time.Date(2026, 12, 3, 9, 0, 2, 0, time.UTC), Kind: "rloc-reachability", RLOC: "192.0.2.9", Up: false}}
)

func startFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{sock: filepath.Join(t.TempDir(), "fake.sock")}
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/map-cache", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("eid") {
			for _, e := range fakeCache {
				if fmt.Sprint(e.IID) == r.URL.Query().Get("iid") && e.EID == r.URL.Query().Get("eid") {
					reply(w, e)
					return
				}
			}
			w.WriteHeader(http.StatusNotFound)
			reply(w, map[string]string{"error": "no entry"})
			return
		}
		reply(w, fakeCache)
	})
	mux.HandleFunc("POST /v1/map-cache", func(w http.ResponseWriter, r *http.Request) {
		var e router.MapCacheEntry
		json.NewDecoder(r.Body).Decode(&e)
		e.Static, e.Negative = true, len(e.RLOCs) == 0
		reply(w, e)
	})
	mux.HandleFunc("GET /v1/database", func(w http.ResponseWriter, _ *http.Request) { reply(w, fakeDB) })
	mux.HandleFunc("POST /v1/database", func(w http.ResponseWriter, _ *http.Request) { reply(w, struct{}{}) })
	for _, p := range []string{"/v1/map-cache", "/v1/database"} {
		mux.HandleFunc("DELETE "+p, func(w http.ResponseWriter, _ *http.Request) { reply(w, struct{}{}) })
	}
	mux.HandleFunc("GET /v1/registrations", func(w http.ResponseWriter, _ *http.Request) { reply(w, fakeRegs) })
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, _ *http.Request) { reply(w, fakeStat) })
	mux.HandleFunc("GET /v1/offload", func(w http.ResponseWriter, _ *http.Request) { reply(w, fakeOff) })
	mux.HandleFunc("GET /v1/mcast/tree", func(w http.ResponseWriter, _ *http.Request) { reply(w, fakeTree) })
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, _ *http.Request) {
		for _, e := range fakeEvts {
			reply(w, e)
		}
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// decode parses out as JSON or YAML (by format) into v.
func decode(t *testing.T, format, out string, v any) {
	t.Helper()
	var err error
	if format == fmtJSON {
		err = json.Unmarshal([]byte(out), v)
	} else {
		// YAML → generic → JSON → v, so v's json tags name the keys.
		var g any
		if err = yaml.Unmarshal([]byte(out), &g); err == nil {
			var b []byte
			if b, err = json.Marshal(g); err == nil {
				err = json.Unmarshal(b, v)
			}
		}
	}
	if err != nil {
		t.Fatalf("-o %s output does not parse: %v\n%s", format, err, out)
	}
}

// TestSubcommandsFormats runs every subcommand against the fake API in
// each output format and checks the table rows and the decoded objects.
func TestSubcommandsFormats(t *testing.T) {
	f := startFake(t)
	type check struct {
		args  []string
		table [][]string // rows (cells as regular expressions)
		into  func() any
		want  any
	}
	checks := []check{
		{[]string{"map-cache"}, [][]string{{"0", `10\.1\.0\.0/24`, `192\.0\.2\.1 1/100 up`, "1440m", `(59m\d+s|1h0m0s)`, ""},
			{"5", `10\.9\.0\.0/16`, `192\.0\.2\.9 1/50 DOWN`, "-", "never", "static"}, {"5", `10\.8\.0\.0/16`, "negative: drop", "-", "never", "static"}},
			func() any { return &[]router.MapCacheEntry{} }, &fakeCache},
		{[]string{"map-cache", "5", "10.9.0.0/16"}, [][]string{{"5", `10\.9\.0\.0/16`, `192\.0\.2\.9 1/50 DOWN`, "-", "never", "static"}},
			func() any { return &router.MapCacheEntry{} }, &fakeCache[1]},
		{[]string{"map-cache", "add", "7", "10.7.0.0/16", "192.0.2.7/2/30"}, [][]string{{"7", `10\.7\.0\.0/16`, `192\.0\.2\.7 2/30 DOWN`, "-", "never", "static"}},
			func() any { return &router.MapCacheEntry{} },
			&router.MapCacheEntry{IID: 7, EID: "10.7.0.0/16", RLOCs: []router.RLOCInfo{{Addr: "192.0.2.7", Priority: 2, Weight: 30}}, Static: true}},
		{[]string{"map-cache", "del", "5", "10.9.0.0/16"}, [][]string{{"deleted"}}, func() any { return &result{} }, &result{"deleted", "5", "10.9.0.0/16"}},
		{[]string{"database"}, [][]string{{"IID", "EID", `RLOCS \(prio/weight\)`, "TTL"}, {"0", `10\.2\.0\.0/24`, `192\.0\.2\.2 1/100`, "1d"}},
			func() any { return &[]router.DatabaseMapping{} }, &fakeDB},
		{[]string{"database", "add", "0", "10.3.0.0/24", "192.0.2.3"}, [][]string{{"added; registering"}}, func() any { return &result{} }, &result{"added; registering", "0", "10.3.0.0/24"}},
		{[]string{"db", "del", "0", "10.2.0.0/24"}, [][]string{{"deleted"}}, func() any { return &result{} }, &result{"deleted", "0", "10.2.0.0/24"}},
		{[]string{"registrations"}, [][]string{{"site1", "0", `10\.1\.0\.0/24`, `192\.0\.2\.1`, `192\.0\.2\.1:4342`, `(59m\d+s|1h0m0s)`}, {"1 registrations"}},
			func() any { return &[]router.RegistrationInfo{} }, &fakeRegs},
		{[]string{"stats"}, [][]string{{"router fake, up 1m0s, 0 workers"}, {"map-register", "3", "0", "0", "1", "0", "0", "0"}, {"registrations", "1"},
			{"map-cache", `3 entries \(1 negative, 2 static\)`}}, func() any { return &router.Stats{} }, &fakeStat},
		{[]string{"offload"}, [][]string{{"encap", "true", "7", "false"}, {"decap", "true", "0", "true"}, {"epochs", "6"},
			{"3 flows in the kernel tables, the 2 busiest:"},
			{"encap", "0", `10\.2\.0\.7`, "42", `192\.0\.2\.2`, "-", "core0", "7", "yes", "9000"},
			{"decap", "0", `10\.1\.0\.7`, "-", `2001:db8::1`, "ipv6", "site0", "6", `no \(past epoch\)`, "12"}},
			func() any { return &router.OffloadInfo{} }, &fakeOff},
		{[]string{"mcast", "tree", "*", "239.1.1.1"}, [][]string{{`\(\*, 239\.1\.1\.1\) root`}, {"", `192\.0\.2\.7`}},
			func() any { return &router.McastTreeView{} }, &fakeTree},
	}
	for _, c := range checks {
		for _, format := range []string{fmtTable, fmtJSON, fmtYAML} {
			t.Run(strings.Join(c.args, "_")+"/"+format, func(t *testing.T) {
				out, err := ctl(t, f.sock, append(c.args, "-o", format)...)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if format == fmtTable {
					for _, r := range c.table {
						if !row(out, r...) {
							t.Errorf("no row %q in\n%s", r, out)
						}
					}
					return
				}
				got := c.into()
				decode(t, format, out, got)
				if g, w := mustJSON(t, got), mustJSON(t, c.want); g != w {
					t.Errorf("decoded\n%s\nwant\n%s", g, w)
				}
			})
		}
	}
	if n := f.count("POST", "/v1/map-cache"); n != 3 {
		t.Errorf("%d map-cache adds, want one per format", n)
	}
	for _, r := range f.requests() {
		if strings.HasPrefix(r, "POST /v1/map-cache") && !strings.Contains(r, `"rlocs":[{"addr":"192.0.2.7","priority":2,"weight":30,"reachable":false}]`) {
			t.Errorf("add request %q", r)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEventsFormats(t *testing.T) {
	f := startFake(t)
	out := mustCtl(t, f.sock, "events")
	if !regexp.MustCompile(`(?m)^09:00:01\.000 registration-accepted\s+iid 0 10\.1\.0\.0/24 from 192\.0\.2\.1:4342 \(site1\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^09:00:02\.000 rloc-reachability\s+rloc 192\.0\.2\.9 down$`).MatchString(out) {
		t.Errorf("events:\n%s", out)
	}
	if out := mustCtl(t, f.sock, "events", "-n", "1"); strings.Count(out, "\n") != 1 {
		t.Errorf("events -n 1:\n%s", out)
	}
	out = mustCtl(t, f.sock, "events", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("events -o json: want one object per line:\n%s", out)
	}
	for i, l := range lines {
		var ev router.Event
		decode(t, fmtJSON, l, &ev)
		if mustJSON(t, ev) != mustJSON(t, fakeEvts[i]) {
			t.Errorf("event %d: %s", i, l)
		}
	}
	out = mustCtl(t, f.sock, "events", "-o", "yaml")
	docs := strings.Split(out, "---\n")
	if len(docs) != 2 {
		t.Fatalf("events -o yaml: want two documents:\n%s", out)
	}
	var ev router.Event
	decode(t, fmtYAML, docs[1], &ev)
	if mustJSON(t, ev) != mustJSON(t, fakeEvts[1]) {
		t.Errorf("yaml event: %+v", ev)
	}
}

// TestWatch: --watch refreshes a table until the iteration bound (the test
// hook standing in for Ctrl-C), and a cancelled context (what SIGINT does)
// ends it after the current refresh.
func TestWatch(t *testing.T) {
	f := startFake(t)
	var b bytes.Buffer
	o := &options{ctx: context.Background(), out: &b, maxWatch: 3}
	if err := execute(o, []string{"-s", f.sock, "stats", "--watch=1ms"}); err != nil {
		t.Fatal(err)
	}
	if n := len(regexp.MustCompile(`(?m)^Every 1ms: rlocctl stats    \d\d:\d\d:\d\d$`).FindAllString(b.String(), -1)); n != 3 ||
		strings.Count(b.String(), "router fake, up 1m0s") != 3 || f.count("GET", "/v1/stats") != 3 {
		t.Fatalf("want 3 refreshes (%d requests):\n%s", f.count("GET", "/v1/stats"), b.String())
	}
	b.Reset()
	o = &options{ctx: context.Background(), out: &b, maxWatch: 1}
	if err := execute(o, []string{"-s", f.sock, "map-cache", "-w"}); err != nil || o.watch != 2*time.Second {
		t.Fatalf("--watch alone: interval %v, err %v", o.watch, err)
	}
	b.Reset()
	o = &options{ctx: context.Background(), out: &b, maxWatch: 2}
	if err := execute(o, []string{"-s", f.sock, "map-cache", "--watch=1ms", "-o", "yaml"}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "---\n") != 1 || strings.Count(b.String(), "eid: 10.9.0.0/16") != 2 {
		t.Fatalf("yaml watch:\n%s", b.String())
	}
	// SIGINT cancels the context: a watch every hour ends right after the
	// refresh during which it came.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Reset()
	w := &cancelWriter{w: &b, cancel: cancel}
	if err := execute(&options{ctx: ctx, out: w}, []string{"-s", f.sock, "registrations", "--watch=1h"}); err != nil ||
		strings.Count(b.String(), "1 registrations") != 1 {
		t.Fatalf("interrupted watch: %v\n%s", err, b.String())
	}
	// Interrupted while asking the daemon: no error either.
	if err := execute(&options{ctx: ctx, out: &b}, []string{"-s", f.sock, "stats", "--watch"}); err != nil {
		t.Fatalf("watch interrupted during a request: %v", err)
	}
}

// cancelWriter cancels a context on its first write.
type cancelWriter struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c *cancelWriter) Write(p []byte) (int, error) {
	c.cancel()
	return c.w.Write(p)
}

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "# bash completion V2 for rlocctl", "zsh": "#compdef rlocctl",
		"fish": "complete -c rlocctl", "powershell": "Register-ArgumentCompleter"} {
		out := mustCtl(t, "/nonexistent.sock", "completion", shell)
		if !strings.Contains(out, marker) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: no %q or dynamic completion call", shell, marker)
		}
	}
}

// TestDynamicCompletion: instance-IDs and EIDs come from the daemon; with
// no daemon, completion is silent.
func TestDynamicCompletion(t *testing.T) {
	f := startFake(t)
	cands := func(sock string, args ...string) []string {
		out := mustCtl(t, sock, append([]string{"__complete"}, args...)...)
		var c []string
		for _, l := range strings.Split(out, "\n") {
			if l != "" && !strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "Completion ended") {
				c = append(c, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return c
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"map-cache", ""}, "add del 0 5"},
		{[]string{"map-cache", "5", ""}, "10.9.0.0/16 10.8.0.0/16"},
		{[]string{"map-cache", "5", "10.9"}, "10.9.0.0/16"},
		{[]string{"map-cache", "del", "0", ""}, "10.1.0.0/24"},
		{[]string{"database", "del", ""}, "0"},
		{[]string{"database", "del", "0", ""}, "10.2.0.0/24"},
		{[]string{"mcast", "tree", "--iid", ""}, "0 5"},
		{[]string{"map-cache", "add", "--action", "dr"}, "drop drop-policy-denied drop-auth-failure"},
		{[]string{"stats", "-o", ""}, "table json yaml"},
	} {
		if got := strings.Join(cands(f.sock, c.args...), " "); got != c.want {
			t.Errorf("complete %q: %q, want %q", c.args, got, c.want)
		}
	}
	if got := cands(filepath.Join(t.TempDir(), "none.sock"), "map-cache", "del", ""); len(got) != 0 {
		t.Errorf("completion without a daemon: %q", got)
	}
}

func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	out := mustCtl(t, "/nonexistent.sock", "gen", "man", dir)
	if !strings.HasPrefix(out, "wrote ") {
		t.Errorf("gen man: %q", out)
	}
	for name, want := range map[string]string{
		"rlocctl.1":                 `.TH "RLOCCTL" "1"`,
		"rlocctl-map-cache.1":       "List the map-cache",
		"rlocctl-map-cache-add.1":   "rlocctl map-cache add --action drop 0 198.51.100.0/24",
		"rlocctl-stats.1":           `refresh every \fBINTERVAL\fR until interrupted`,
		"rlocctl-completion-bash.1": "bash",
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("no man page %s: %v", name, err)
			continue
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s has no %q:\n%s", name, want, b)
		}
	}
}

// TestErrorsSayWhatToDo: the errors for an absent daemon, a stale socket and
// a refused permission name the path and the remedy.
func TestErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	if _, err := ctl(t, missing, "stats"); err == nil || err.Error() !=
		"cannot reach rlocd: is rlocd running? looked for "+missing+" (set --socket or $RLOC_MGMT_SOCKET)" {
		t.Errorf("missing socket: %v", err)
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := ctl(t, stale, "map-cache"); err == nil || !strings.Contains(err.Error(), "nothing listens on "+stale) {
		t.Errorf("stale socket: %v", err)
	}
	opErr := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	want := "permission denied on /run/rloc/rlocd.sock: run rlocctl as root or as a member of the rloc group"
	if err := explain(opErr, "/run/rloc/rlocd.sock"); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("EACCES: %v", err)
	}
	if os.Geteuid() != 0 {
		// Not root: a real socket without access rights is refused.
		f := startFake(t)
		os.Chmod(f.sock, 0)
		if _, err := ctl(t, f.sock, "stats"); err == nil || !strings.Contains(err.Error(), "rloc group") {
			t.Errorf("real EACCES: %v", err)
		}
	}
	if _, err := ctl(t, missing, "stats", "-o", "xml"); err == nil || !strings.Contains(err.Error(), "want -o table, -o json or -o yaml") {
		t.Errorf("bad -o: %v", err)
	}
}

func TestVersion(t *testing.T) {
	out := mustCtl(t, "/nonexistent.sock", "version")
	if !strings.HasPrefix(out, "rlocctl ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %q", out)
	}
	var in buildinfo.Info
	decode(t, fmtJSON, mustCtl(t, "/nonexistent.sock", "version", "-o", "json"), &in)
	if in.Program != "rlocctl" || !strings.HasPrefix(in.GoVersion, "go1.") {
		t.Errorf("version -o json: %+v", in)
	}
}

func TestLegacyFlags(t *testing.T) {
	root := newRoot(&options{ctx: context.Background(), out: io.Discard})
	got := legacyFlags(root, []string{"-s", "x", "map-cache", "add", "-action", "drop", "-iid=5", "-n", "--", "-action"})
	want := []string{"-s", "x", "map-cache", "add", "--action", "drop", "--iid=5", "-n", "--", "-action"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("legacyFlags: %q, want %q", got, want)
	}
}
