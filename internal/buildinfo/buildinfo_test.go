package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/rloc-router/rloc", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-03T09:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}
	in := fromBuildInfo("rlocd", bi, true)
	want := Info{Program: "rlocd", Version: "v1.2.0", Revision: "0123456789abcdef0123456789abcdef01234567",
		Time: "2026-12-03T09:00:00Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64"}
	if in != want {
		t.Fatalf("got %+v\nwant %+v", in, want)
	}
	if s, w := in.String(), "rlocd v1.2.0 (commit 0123456789ab, 2026-12-03T09:00:00Z, modified) go1.26.8 linux/arm64"; s != w {
		t.Errorf("String() = %q, want %q", s, w)
	}
	in = fromBuildInfo("lig", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true)
	if s := in.String(); s != "lig (devel) (no VCS information in the build) go1.26.8 "+runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("no VCS: %q", s)
	}
	if in := fromBuildInfo("x", nil, false); in.Version != "unknown" || in.GoVersion != runtime.Version() {
		t.Errorf("no build info: %+v", in)
	}
}

// TestRead: a test binary has build information with the toolchain that
// built it.
func TestRead(t *testing.T) {
	in := Read("test")
	if in.GoVersion != runtime.Version() || !strings.HasPrefix(in.String(), "test ") {
		t.Fatalf("Read: %+v", in)
	}
}

func TestRequested(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{[]string{"--config", "x.yaml", "-version"}, true},
		{[]string{"--config", "x.yaml"}, false},
		{[]string{"--", "--version"}, false},
		{nil, false},
	} {
		if got := Requested(c.args); got != c.want {
			t.Errorf("Requested(%q) = %v", c.args, got)
		}
	}
}
