package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCommitTimeFromSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1796288400")
	if got := commitTime(); !got.Equal(time.Unix(1796288400, 0)) {
		t.Errorf("commitTime() = %v", got)
	}
}

// TestGitVersion: in this checkout the version names the commit; outside
// a git checkout it is 0.0.0~dev.
func TestGitVersion(t *testing.T) {
	v := gitVersion(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	if v != "0.0.0~dev" && !regexp.MustCompile(`^0\.0\.0~git20261203\.[0-9a-f]{12}(\.dirty)?$`).MatchString(v) {
		t.Errorf("gitVersion = %q", v)
	}
	t.Chdir(t.TempDir())
	t.Setenv("GIT_CEILING_DIRECTORIES", "/")
	if v := gitVersion(time.Now()); v != "0.0.0~dev" {
		t.Errorf("outside git: %q", v)
	}
	if err := run(nil); err == nil || !strings.Contains(err.Error(), "module root") {
		t.Errorf("run outside the module root: %v", err)
	}
}
