package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	var b bytes.Buffer
	if !printVersion([]string{"--version"}, &b) || !strings.HasPrefix(b.String(), "rlocd ") ||
		!strings.Contains(b.String(), runtime.Version()) {
		t.Fatalf("rlocd --version: %q", b.String())
	}
	b.Reset()
	if printVersion([]string{"--config", "x.yaml"}, &b) || b.Len() != 0 {
		t.Fatalf("printed a version unasked: %q", b.String())
	}
}
