package main

import (
	"strings"
	"testing"
)

// TestOffloadOff: against a router without the kernel offload, `rlocctl
// offload` fails and says which options turn it on.
func TestOffloadOff(t *testing.T) {
	_, sock := startRouter(t)
	out, err := ctl(t, sock, "offload")
	if err == nil || !strings.Contains(err.Error()+out, "the kernel offload is off (xdp.offload, xdp.offload_decap)") {
		t.Fatalf("rlocctl offload without the offload: %v\n%s", err, out)
	}
}
