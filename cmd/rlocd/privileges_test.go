package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/router"
)

// TestPrivilegesWarning: before start-up rlocd names the capabilities the
// configuration needs and the process lacks, and says nothing when it has
// them.
func TestPrivilegesWarning(t *testing.T) {
	cfg, _, err := loadConfig(filepath.Join("testdata", "e2e-xtr1.yaml"), flags())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	p := privileges(log, &cfg, 40, router.Caps(router.CapNetAdmin, router.CapBPF))
	if want := "cap_net_admin"; p.Running.String() != want {
		t.Errorf("running set %q, want %q", p.Running, want)
	}
	if want := `missing=cap_net_raw,cap_ipc_lock,cap_perfmon`; !strings.Contains(buf.String(), want) {
		t.Errorf("log %q does not say %s", buf.String(), want)
	}
	buf.Reset()
	privileges(log, &cfg, 40, p.StartUp)
	if buf.Len() != 0 {
		t.Errorf("warned with every capability: %s", buf.String())
	}
}
