package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from what loadConfig returns")

// goldenFiles are every configuration shipped or written by a test: the
// examples, the demo's, and copies of what the e2e generators write
// (testdata/e2e-*.yaml) plus testdata/extra-*.yaml, which use every key.
func goldenFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"../../configs/*.yaml", "../../configs/demo/*.yaml", "testdata/*.yaml"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d configurations", len(files))
	}
	return files
}

// TestConfigGolden loads every known configuration and compares the
// router.Config (and the daemon's options) with testdata/golden, recorded
// from the loader the schema replaced: the same YAML keeps its meaning.
func TestConfigGolden(t *testing.T) {
	for _, f := range goldenFiles(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if strings.Contains(f, "configs/demo/") {
			name = "demo-" + name
		}
		t.Run(name, func(t *testing.T) {
			cfg, opts, err := loadConfig(f, flags())
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(struct {
				Config    any
				LogLevel  string
				LogFormat string
			}{cfg, opts.logLevel.String(), opts.logFormat}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			gf := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(gf), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(gf, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s loads differently from %s:\n%s", f, gf, got)
			}
		})
	}
}
