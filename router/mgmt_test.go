package router

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// A Map-Server + Map-Resolver router has no data plane, so it runs without
// root, XDP or namespaces: its control sockets listen on loopback.

const testSecret = "site-one-secret"

// startMS starts a Map-Server/Map-Resolver router on 127.0.0.1 with its
// management socket in a temporary directory and /metrics on loopback.
func startMS(t *testing.T) *Router {
	t.Helper()
	cfg := Config{
		Name:    "ms-test",
		Roles:   Roles{MapServer: true, MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites:   []slowpath.SiteConfig{testSite()},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Metrics: MetricsOptions{Listen: "127.0.0.1:0"},
	}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func testSite() slowpath.SiteConfig {
	return slowpath.SiteConfig{Name: "site1",
		Keys:     []slowpath.AuthKey{{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: testSecret}},
		Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/24")}}}}
}

// apiClient talks HTTP over the router's Unix socket.
func apiClient(r *Router) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", r.Config().Mgmt.Socket)
		}}}
}

// call does one API request and decodes a 200 answer into out; it returns
// the status code.
func call(t *testing.T, r *Router, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://rlocd"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apiClient(r).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %s without a JSON error: %s", method, path, resp.Status, b)
		}
	}
	return resp.StatusCode
}

// register sends a Map-Register for 10.1.0.0/24 signed with secret from c
// to the router and returns its nonce.
func register(t *testing.T, r *Router, c *net.UDPConn, secret string, proxy bool, nonce byte) wire.Nonce {
	t.Helper()
	reg := wire.MapRegister{WantMapNotify: true, ProxyReply: proxy, Nonce: wire.Nonce{7, 0, 0, 0, 0, 0, 0, nonce},
		Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
		Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0")),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true,
				Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
	b, err := reg.AppendSigned(nil, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	return reg.Nonce
}

// readType waits up to 2 s for a control message of type want on c.
func readType(t *testing.T, c *net.UDPConn, want wire.MessageType) []byte {
	t.Helper()
	buf := make([]byte, 9216)
	deadline := time.Now().Add(2 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("waiting for %v: %v", want, err)
		}
		if typ, err := wire.PeekType(buf[:n]); err == nil && typ == want {
			return buf[:n]
		}
	}
}

func udpLocal(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMgmtRegistrationsEventsStats: a good Map-Register is notified, shows
// in /v1/registrations and produces a registration-accepted event; a bad
// key is rejected, counted and evented; /v1/stats counts both.
func TestMgmtRegistrationsEventsStats(t *testing.T) {
	r := startMS(t)
	// Subscribe before registering so the event cannot be missed.
	req, _ := http.NewRequest("GET", "http://rlocd/v1/events", nil)
	hc := apiClient(r)
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("events content type %q", ct)
	}
	events := make(chan Event, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
		close(events)
	}()
	next := func(kind string) Event {
		t.Helper()
		timeout := time.After(3 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("event stream ended before %s", kind)
				}
				if ev.Kind == kind {
					return ev
				}
			case <-timeout:
				t.Fatalf("no %s event within 3 s", kind)
			}
		}
	}

	c := udpLocal(t)
	nonce := register(t, r, c, testSecret, false, 1)
	var mn wire.MapNotify
	if err := wire.VerifyMapNotify(readType(t, c, wire.TypeMapNotify), []byte(testSecret), &mn); err != nil {
		t.Fatalf("Map-Notify: %v", err)
	}
	if mn.Nonce != nonce {
		t.Errorf("Map-Notify nonce %x, want the Map-Register's %x", mn.Nonce, nonce)
	}
	ev := next(EventRegistrationAccepted)
	if ev.EID != "10.1.0.0/24" || ev.Detail != "site1" || !strings.HasPrefix(ev.Source, "127.0.0.1:") || ev.Time.IsZero() {
		t.Errorf("accepted event %+v", ev)
	}

	var regs []RegistrationInfo
	if code := call(t, r, "GET", "/v1/registrations", nil, &regs); code != 200 {
		t.Fatalf("registrations: %d", code)
	}
	if len(regs) != 1 || regs[0].Site != "site1" || regs[0].EID != "10.1.0.0/24" ||
		len(regs[0].RLOCs) != 1 || regs[0].RLOCs[0] != "192.0.2.1" || regs[0].Source != c.LocalAddr().String() ||
		time.Until(regs[0].Expires) <= 0 {
		t.Fatalf("registrations %+v", regs)
	}

	register(t, r, c, "wrong", false, 2)
	rej := next(EventRegistrationRejected)
	if rej.Source != c.LocalAddr().String() {
		t.Errorf("rejected event %+v", rej)
	}
	var st Stats
	call(t, r, "GET", "/v1/stats", nil, &st)
	var mr MsgCount
	for _, m := range st.Messages {
		if m.Type == "map-register" {
			mr = m
		}
	}
	if mr.Received != 2 || mr.BadAuth != 1 {
		t.Errorf("map-register counters %+v", mr)
	}
	if st.Control["registrations"] != 1 || st.Control["registrations_accepted"] != 1 ||
		st.Control["registrations_rejected"] != 0 { // policy refusals only; a bad key is bad-auth
		t.Errorf("control counters %v", st.Control)
	}
	if st.Name != "ms-test" || st.Workers != 0 || st.Fastpath != nil {
		t.Errorf("stats header %+v", st)
	}
	call(t, r, "POST", "/v1/map-cache", MapCacheEntry{EID: "10.9.0.0/16", RLOCs: []RLOCInfo{{Addr: "192.0.2.9"}}}, nil)
	for _, path := range []string{"/v1/stats", "/v1/registrations", "/v1/map-cache"} {
		var v any
		call(t, r, "GET", path, nil, &v)
		for _, k := range jsonKeys(v, nil) {
			if !snakeCase.MatchString(k) {
				t.Errorf("GET %s: key %q is not snake_case", path, k)
			}
		}
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// jsonKeys appends every object key in v (decoded JSON) to keys.
func jsonKeys(v any, keys []string) []string {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			keys = jsonKeys(x, append(keys, k))
		}
	case []any:
		for _, x := range v {
			keys = jsonKeys(x, keys)
		}
	}
	return keys
}

// TestMgmtMapCache: add, get, list and delete map-cache entries through
// the API, and the errors for bad requests.
func TestMgmtMapCache(t *testing.T) {
	r := startMS(t)
	add := MapCacheEntry{IID: 7, EID: "10.9.0.0/16", RLOCs: []RLOCInfo{{Addr: "192.0.2.9", Priority: 1, Weight: 50},
		{Addr: "2001:db8:ff::9", Priority: 2, Weight: 100}}}
	var got MapCacheEntry
	if code := call(t, r, "POST", "/v1/map-cache", add, &got); code != 200 {
		t.Fatalf("add: %d", code)
	}
	if got.IID != 7 || got.EID != "10.9.0.0/16" || !got.Static || len(got.RLOCs) != 2 || got.RLOCs[0].Addr != "192.0.2.9" ||
		got.RLOCs[0].Weight != 50 || !got.RLOCs[0].Reachable || got.RLOCs[1].Priority != 2 {
		t.Fatalf("added %+v", got)
	}
	neg := MapCacheEntry{EID: "198.51.100.0/24", Action: "drop"}
	if code := call(t, r, "POST", "/v1/map-cache", neg, &got); code != 200 || !got.Negative || got.Action != "drop" {
		t.Fatalf("negative add: %d %+v", code, got)
	}
	var list []MapCacheEntry
	call(t, r, "GET", "/v1/map-cache", nil, &list)
	if len(list) != 2 || list[0].EID != "198.51.100.0/24" || list[1].EID != "10.9.0.0/16" {
		t.Fatalf("list %+v", list)
	}
	// A host address finds nothing: get is an exact match on the prefix.
	if code := call(t, r, "GET", "/v1/map-cache?iid=7&eid=10.9.1.1", nil, nil); code != http.StatusNotFound {
		t.Errorf("get host: %d", code)
	}
	if code := call(t, r, "GET", "/v1/map-cache?iid=7&eid=10.9.0.0/16", nil, &got); code != 200 || got.EID != "10.9.0.0/16" {
		t.Errorf("get: %d %+v", code, got)
	}
	if code := call(t, r, "GET", "/v1/map-cache?iid=8&eid=10.9.0.0/16", nil, nil); code != http.StatusNotFound {
		t.Errorf("get in another instance: %d", code)
	}
	var del map[string]int
	if code := call(t, r, "DELETE", "/v1/map-cache?iid=7&eid=10.9.0.0/16", nil, &del); code != 200 || del["deleted"] != 1 {
		t.Fatalf("delete: %d %v", code, del)
	}
	if code := call(t, r, "DELETE", "/v1/map-cache?iid=7&eid=10.9.0.0/16", nil, nil); code != http.StatusNotFound {
		t.Errorf("second delete: %d", code)
	}
	call(t, r, "GET", "/v1/map-cache", nil, &list)
	if len(list) != 1 {
		t.Errorf("after delete %+v", list)
	}
	for _, bad := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/map-cache", MapCacheEntry{EID: "not-a-prefix"}},
		{"POST", "/v1/map-cache", MapCacheEntry{EID: "10.0.0.0/8", RLOCs: []RLOCInfo{{Addr: "bogus"}}}},
		{"POST", "/v1/map-cache", MapCacheEntry{EID: "10.0.0.0/8", Action: "teleport"}},
		{"POST", "/v1/map-cache", "{"},
		{"GET", "/v1/map-cache?iid=99999999&eid=10.0.0.0/8", nil},
		{"DELETE", "/v1/map-cache?eid=zz", nil},
	} {
		if code := call(t, r, bad.method, bad.path, bad.body, nil); code != http.StatusBadRequest {
			t.Errorf("%s %s %v: %d, want 400", bad.method, bad.path, bad.body, code)
		}
	}
}

// TestMgmtDatabaseNeedsETR: a router without the ETR role has an empty
// database and refuses additions with an error.
func TestMgmtDatabaseNeedsETR(t *testing.T) {
	r := startMS(t)
	var ds []DatabaseMapping
	if code := call(t, r, "GET", "/v1/database", nil, &ds); code != 200 || len(ds) != 0 {
		t.Fatalf("database: %d %+v", code, ds)
	}
	d := DatabaseMapping{EID: "10.1.0.0/24", RLOCs: []RLOCInfo{{Addr: "192.0.2.1", Priority: 1, Weight: 100}}}
	if code := call(t, r, "POST", "/v1/database", d, nil); code != http.StatusBadRequest {
		t.Errorf("database add without ETR: %d", code)
	}
	if code := call(t, r, "DELETE", "/v1/database?eid=10.1.0.0/24", nil, nil); code != http.StatusNotFound {
		t.Errorf("database del of nothing: %d", code)
	}
}

// metrics scrapes r's /metrics and returns the sample lines by series
// (name{labels}).
func metrics(t *testing.T, r *Router) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.metricLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	return parseMetrics(t, resp.Body)
}

// parseMetrics reads the Prometheus text format into a map.
func parseMetrics(t *testing.T, rd io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsControlPlane: /metrics over HTTP has the control-message
// counters by type and result, the registrations gauge, map-cache sizes
// and the resolution-latency histogram (empty on a router that resolves
// nothing; the e2e tests check it non-zero on an ITR).
func TestMetricsControlPlane(t *testing.T) {
	r := startMS(t)
	c := udpLocal(t)
	register(t, r, c, testSecret, true, 1)
	readType(t, c, wire.TypeMapNotify)
	register(t, r, c, "bad", true, 2)
	// An ECM Map-Request the Map-Server answers as proxy (P bit above).
	self := c.LocalAddr().(*net.UDPAddr).AddrPort()
	mreq := wire.MapRequest{Nonce: wire.Nonce{1, 2, 3, 4, 5, 6, 7, 8}, ITRRLOCs: []wire.Address{wire.IPAddress(self.Addr())},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.5"))}}}
	inner, err := mreq.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	ecm := wire.ECM{Src: self.Addr(), Dst: netip.MustParseAddr("10.1.0.5"), SrcPort: self.Port(), DstPort: wire.ControlPort,
		TTL: 64, Message: inner}
	pkt, err := ecm.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(pkt, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	var rep wire.MapReply
	if err := rep.Parse(readType(t, c, wire.TypeMapReply)); err != nil {
		t.Fatal(err)
	}
	if rep.Nonce != mreq.Nonce || len(rep.Records) != 1 || rep.Records[0].MaskLen != 24 {
		t.Fatalf("proxy Map-Reply %+v", rep)
	}
	call(t, r, "POST", "/v1/map-cache", MapCacheEntry{EID: "10.9.0.0/16", RLOCs: []RLOCInfo{{Addr: "192.0.2.9"}}}, nil)

	m := metrics(t, r)
	want := map[string]float64{
		`rloc_control_messages_total{result="received",type="map_register"}`: 2,
		`rloc_control_messages_total{result="bad_auth",type="map_register"}`: 1,
		`rloc_control_messages_total{result="sent",type="map_notify"}`:       1,
		`rloc_control_messages_total{result="received",type="ecm"}`:          1,
		`rloc_control_messages_total{result="sent",type="map_reply"}`:        1,
		`rloc_registrations`:                                        1,
		`rloc_map_cache_entries{kind="all"}`:                        1,
		`rloc_map_cache_entries{kind="static"}`:                     1,
		`rloc_map_cache_operations_total{op="inserted"}`:            1,
		`rloc_control_events_total{event="registrations_accepted"}`: 1,
		`rloc_control_events_total{event="registrations_rejected"}`: 0, // bad keys count as bad_auth
		`rloc_resolution_latency_seconds_count`:                     0,
		`rloc_resolution_latency_seconds_bucket{le="+Inf"}`:         0,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("/metrics has no %s", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if _, ok := m[`rloc_fastpath_packets_total{event="rx"}`]; ok {
		t.Errorf("a router without workers exports fast-path counters")
	}
}

// TestMgmtSocketInUse: a second router on the same management socket
// refuses to start and names the key.
func TestMgmtSocketInUse(t *testing.T) {
	r := startMS(t)
	cfg := r.Config()
	cfg.Metrics.Listen = ""
	if r2, err := Start(cfg); err == nil {
		r2.Stop()
		t.Fatal("second router on the same socket started")
	} else if !strings.Contains(err.Error(), "mgmt.socket") {
		t.Errorf("error %q does not name mgmt.socket", err)
	}
	// The first one still answers.
	var st Stats
	if code := call(t, r, "GET", "/v1/stats", nil, &st); code != 200 {
		t.Errorf("stats after the refused start: %d", code)
	}
}

// TestMgmtSocketPathNotASocket: a management socket path that is a
// regular file or a directory is refused and left as it was; a stale
// socket (nobody listening) is replaced.
func TestMgmtSocketPathNotASocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := startMS(t).Config()
	cfg.Metrics.Listen = ""
	for _, p := range []string{file, empty} {
		cfg.Mgmt.Socket = p
		if r, err := Start(cfg); err == nil {
			r.Stop()
			t.Errorf("%s: started on a path that is not a socket", p)
		} else if !strings.Contains(err.Error(), "mgmt.socket") || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("%s: error %q", p, err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("file changed: %q", b)
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	cfg.Mgmt.Socket = stale
	r, err := Start(cfg)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	r.Stop()
}

// TestStartLog: the start-up line says what runs and where it listens; a
// start that fails on a missing interface names it, and logs no "router
// stopped" (the caller reports the failure once).
func TestStartLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	cfg := startMS(t).Config()
	cfg.Mgmt.Socket = filepath.Join(t.TempDir(), "m.sock")
	cfg.Logger = log
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	mu.Lock()
	out := buf.String()
	buf.Reset()
	mu.Unlock()
	for _, want := range []string{`msg="router started"`, `roles="[map-server, map-resolver]"`, "control=[127.0.0.1:", "mgmt=" + cfg.Mgmt.Socket, "metrics=127.0.0.1:", `msg="router stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	bad := Config{Name: "nosuch", Roles: Roles{ITR: true}, RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		Interfaces:   []Interface{{Name: "rloc-nosuch0", Side: SideSite}, {Name: "rloc-nosuch1", Side: SideCore}},
		MapResolvers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.100:4342")}, Logger: log,
		Mgmt: MgmtOptions{Socket: filepath.Join(t.TempDir(), "n.sock")}}
	if r, err := Start(bad); err == nil {
		r.Stop()
		t.Fatal("started without its interfaces")
	} else if !strings.Contains(err.Error(), `interfaces[0].name: no interface "rloc-nosuch0"`) {
		t.Errorf("error %q does not name the interface", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), "router stopped") {
		t.Errorf("a failed start logged router stopped:\n%s", buf.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestMgmtRegistrationsPaged: GET /v1/registrations?limit=N gives pages
// of N with the next page's cursor in X-Rloc-Next, the last without; a
// bad limit or cursor is a 400 with a JSON error.
func TestMgmtRegistrationsPaged(t *testing.T) {
	r := startMS(t)
	for i := range 5 {
		c := udpLocal(t)
		register(t, r, c, testSecret, false, byte(10+i))
		readType(t, c, wire.TypeMapNotify)
	}
	page := func(q string) ([]RegistrationInfo, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://rlocd/v1/registrations"+q, nil)
		resp, err := apiClient(r).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var regs []RegistrationInfo
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&regs) != nil {
			t.Fatalf("GET %s: %s", q, resp.Status)
		}
		return regs, resp.Header.Get("X-Rloc-Next")
	}
	all, next := page("")
	if len(all) != 5 || next != "" {
		t.Fatalf("default page: %d entries, next %q", len(all), next)
	}
	var got []RegistrationInfo
	q := "?limit=2"
	for pages := 0; ; pages++ {
		regs, next := page(q)
		got = append(got, regs...)
		if next == "" {
			if pages != 2 || len(regs) != 1 {
				t.Fatalf("last page %d has %d entries", pages, len(regs))
			}
			break
		}
		if len(regs) != 2 {
			t.Fatalf("page %d: %d entries", pages, len(regs))
		}
		q = "?limit=2&after=" + url.QueryEscape(next)
	}
	for i := range all {
		if got[i].Source != all[i].Source {
			t.Fatalf("paged %d: %s, whole listing %s", i, got[i].Source, all[i].Source)
		}
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?limit=10001", "?after=nonsense", "?after=eid|0|10.1.0.0/33|x"} {
		if code := call(t, r, "GET", "/v1/registrations"+bad, nil, nil); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, code)
		}
	}
}
