package main

import (
	"strings"
	"testing"
)

// TestStatusFlag: --status and RLOC_STATUS_LISTEN set status.listen (the
// flag wins); a non-loopback address without status.remote is refused.
func TestStatusFlag(t *testing.T) {
	t.Setenv("RLOC_STATUS_LISTEN", "127.0.0.1:8081")
	cfg, _, err := loadConfig("../../configs/demo/msmr.yaml", flags())
	if err != nil || cfg.Status.Listen != "127.0.0.1:8081" {
		t.Fatalf("env: status.listen %q, %v", cfg.Status.Listen, err)
	}
	fs := flags()
	if err := fs.Parse([]string{"--status", "[::1]:8082"}); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err = loadConfig("../../configs/demo/msmr.yaml", fs); err != nil || cfg.Status.Listen != "[::1]:8082" {
		t.Fatalf("flag: status.listen %q, %v", cfg.Status.Listen, err)
	}
	fs = flags()
	if err := fs.Parse([]string{"--status", "0.0.0.0:8080"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadConfig("../../configs/demo/msmr.yaml", fs); err == nil || !strings.Contains(err.Error(), "status.remote") {
		t.Fatalf("a status page on every address without status.remote: %v", err)
	}
}
