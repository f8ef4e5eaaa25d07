package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagErrors: a wrong flag says what was wrong and prints the usage
// (exit 2); --help prints the usage and exits 0; a missing --config says
// so.
func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--bogus"}, 2, []string{"unknown flag: --bogus", "usage: rlocd --config FILE", "--mgmt-socket"}},
		{[]string{"--config"}, 2, []string{"flag needs an argument", "usage:"}},
		{[]string{"--help"}, 0, []string{"usage: rlocd --config FILE", "--check"}},
		{[]string{"-h"}, 0, []string{"usage:"}},
		{nil, 2, []string{"--config FILE is required"}},
	} {
		var out bytes.Buffer
		if code := run(c.args, &out); code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, out.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out.String())
			}
		}
	}
}

// TestCheckStateFile: --check refuses a state file start-up would refuse,
// naming the key and the file, and accepts a missing one.
func TestCheckStateFile(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		state string
		code  int
		want  string
	}{{filepath.Join(dir, "new.db"), 0, "ok"}, {junk, 1, "map_server.state_file: state file " + junk}} {
		cf := filepath.Join(dir, "ms.yaml")
		yaml := `roles: [map-server]
sites: [{name: s, keys: [{id: 1, secret: k}], prefixes: [{eid: 10.1.0.0/24}]}]
map_server: {state_file: "` + c.state + `"}
`
		if err := os.WriteFile(cf, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if code := run([]string{"--config", cf, "--check"}, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("state file %s: exit %d, %q; want %d, %q", c.state, code, out.String(), c.code, c.want)
		}
	}
}
