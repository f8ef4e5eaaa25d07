package gre

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTUNOpenError: a hidden device and a refused one are named with what
// to do (the packaged unit's ALT drop-in); other errors are passed on as
// they are, and the cause stays reachable with errors.Is.
func TestTUNOpenError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{unix.ENOENT, "alt.conf drop-in"},
		{fmt.Errorf("wrapped: %w", unix.EPERM), "needs CAP_NET_ADMIN"},
		{unix.EACCES, "needs CAP_NET_ADMIN"},
		{unix.EMFILE, ""},
	} {
		got := tunOpenError(c.err)
		if !errors.Is(got, c.err) || !strings.HasPrefix(got.Error(), "gre: open /dev/net/tun: ") {
			t.Fatalf("%v: got %q, which does not wrap the cause", c.err, got)
		}
		if c.want == "" {
			if strings.Contains(got.Error(), "(") {
				t.Fatalf("%v: got a hint where none fits: %q", c.err, got)
			}
		} else if !strings.Contains(got.Error(), c.want) {
			t.Fatalf("%v: got %q, want it to say %q", c.err, got, c.want)
		}
	}
}
