// Command mkdeb builds rloc's Debian package from the module root (`make
// deb` runs it):
//
//	go run ./packaging/cmd/mkdeb [-o DIR] [-version V] [-goarch ARCH] [-config FILE]
//
// It builds rlocd, rlocctl and lig (static, CGO_ENABLED=0), checks the
// example configuration with the built rlocd, generates the rlocctl man
// pages and shell completions with the built rlocctl, and writes
// DIR/rloc_VERSION_ARCH.deb with package packaging. VERSION defaults to
// 0.0.0~gitYYYYMMDD.COMMIT of the checked-out commit.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rloc-router/rloc/packaging"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	outDir := fs.String("o", "dist", "output directory")
	version := fs.String("version", "", "Debian version (default: 0.0.0~gitDATE.COMMIT)")
	goarch := fs.String("goarch", runtime.GOARCH, "target GOARCH")
	config := fs.String("config", "configs/xtr.yaml", "example configuration installed as "+packaging.PathConfig)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return fmt.Errorf("run from the module root (no go.mod here)")
	}
	tmp, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w", "-o", bin+"/",
		"./cmd/rlocd", "./cmd/rlocctl", "./cmd/lig")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+*goarch)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	o := packaging.Options{Version: *version, Arch: packaging.DebArch(*goarch), BinDir: bin, Config: *config,
		Completions: map[string]string{}, MTime: commitTime()}
	if o.Version == "" {
		o.Version = gitVersion(o.MTime)
	}
	if _, err := os.Stat("docs/operating.md"); err == nil {
		o.Docs = append(o.Docs, "docs/operating.md")
	}
	if *goarch == runtime.GOARCH {
		// The example configuration must load, and the built rlocctl
		// writes its own man pages and completions.
		if out, err := exec.Command(filepath.Join(bin, "rlocd"), "--config", *config, "--check").CombinedOutput(); err != nil {
			return fmt.Errorf("%s does not pass rlocd --check: %v: %s", *config, err, out)
		}
		ctl := filepath.Join(bin, "rlocctl")
		o.ManDir = filepath.Join(tmp, "man")
		if out, err := exec.Command(ctl, "gen", "man", o.ManDir).CombinedOutput(); err != nil {
			return fmt.Errorf("rlocctl gen man: %v: %s", err, out)
		}
		for _, sh := range []string{"bash", "zsh", "fish"} {
			out, err := exec.Command(ctl, "completion", sh).Output()
			if err != nil {
				return fmt.Errorf("rlocctl completion %s: %w", sh, err)
			}
			p := filepath.Join(tmp, "rlocctl."+sh)
			if err := os.WriteFile(p, out, 0o644); err != nil {
				return err
			}
			o.Completions[sh] = p
		}
	} else {
		fmt.Fprintf(os.Stderr, "mkdeb: cross build for %s: no man pages or completions\n", *goarch)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	var deb bytes.Buffer
	if err := packaging.Build(&deb, o); err != nil {
		return err
	}
	name := filepath.Join(*outDir, fmt.Sprintf("rloc_%s_%s.deb", o.Version, o.Arch))
	if err := os.WriteFile(name, deb.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Println(name)
	return nil
}

// commitTime is $SOURCE_DATE_EPOCH, else the checked-out commit's time,
// else now.
func commitTime() time.Time {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		out, _ := exec.Command("git", "log", "-1", "--format=%ct").Output()
		s = strings.TrimSpace(string(out))
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0).UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}

// gitVersion is 0.0.0~gitDATE.COMMIT (".dirty" appended for uncommitted
// changes), or 0.0.0~dev outside a git checkout.
func gitVersion(t time.Time) string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "0.0.0~dev"
	}
	v := "0.0.0~git" + t.Format("20060102") + "." + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		v += ".dirty"
	}
	return v
}
