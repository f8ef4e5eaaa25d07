package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFlag: lig --version prints the build and exits 0 without
// needing an EID or a Map-Resolver.
func TestVersionFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, &out, &errb); code != 0 ||
		!strings.HasPrefix(out.String(), "lig ") || !strings.Contains(out.String(), runtime.Version()) || errb.Len() != 0 {
		t.Fatalf("lig --version: code %d, out %q, err %q", code, out.String(), errb.String())
	}
}
