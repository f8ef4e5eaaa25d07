package main

import (
	"bytes"
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
