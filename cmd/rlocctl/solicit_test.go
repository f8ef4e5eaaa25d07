package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rloc-router/rloc/router"
)

// TestSolicitCommand runs `rlocctl solicit` against an API serving a
// solicitation state: the table shows the peer and the counters, -o json
// decodes to router.SolicitInfo.
func TestSolicitCommand(t *testing.T) {
	info := router.SolicitInfo{Enabled: true, Copies: 3, Counters: map[string]uint64{"installed": 3, "bad_cookie": 1},
		Peers: []router.SolicitPeerInfo{{Addr: "192.0.2.3:4342", Pull: "done", Pages: 1, Installed: 3}}}
	var mu sync.Mutex
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/solicit" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(info)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	out := mustCtl(t, sock, "solicit")
	for _, r := range [][]string{{`192\.0\.2\.3:4342`, "done", "1", "3", "false", "0", "0"}, {"bad_cookie", "1"}, {"installed", "3"}} {
		if !row(out, r...) {
			t.Errorf("no row %q in\n%s", r, out)
		}
	}
	if !strings.Contains(out, "3 copies held from peers, holding misses: false") {
		t.Errorf("no summary line in\n%s", out)
	}
	var got router.SolicitInfo
	if err := json.Unmarshal([]byte(mustCtl(t, sock, "solicit", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Copies != 3 || len(got.Peers) != 1 || got.Peers[0].Pull != "done" || got.Counters["installed"] != 3 {
		t.Fatalf("decoded %+v", got)
	}
	mu.Lock()
	info = router.SolicitInfo{}
	mu.Unlock()
	if out := mustCtl(t, sock, "solicit"); !strings.Contains(out, "solicitation not configured (itr.solicit.peers)") {
		t.Fatalf("disabled: %s", out)
	}
}
