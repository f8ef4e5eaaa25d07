// Package buildinfo reports how an rloc binary was built: the module
// version, the VCS revision, its time and whether the tree was modified, and
// the Go toolchain, from runtime/debug.ReadBuildInfo. rlocd --version,
// rlocctl version and lig --version print it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a binary knows about its own build.
type Info struct {
	// Program is the binary's name ("rlocd", "rlocctl", "lig").
	Program string `json:"program"`
	// Version is the main module's version ("(devel)" for a build from a
	// work tree rather than from a tagged module).
	Version string `json:"version"`
	// Revision is the VCS commit, Time its commit time (RFC 3339) and
	// Modified whether the work tree had uncommitted changes; all empty when
	// the binary was built without VCS stamping (-buildvcs=false).
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary, Platform its
	// GOOS/GOARCH.
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Read returns the build information of the running binary, named program.
func Read(program string) Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(program, bi, ok)
}

func fromBuildInfo(program string, bi *debug.BuildInfo, ok bool) Info {
	in := Info{Program: program, Version: "unknown", GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "GOOS":
			in.Platform = s.Value + in.Platform[strings.Index(in.Platform, "/"):]
		case "GOARCH":
			in.Platform = in.Platform[:strings.Index(in.Platform, "/")+1] + s.Value
		}
	}
	return in
}

// String is the one-line form printed by --version, e.g.
// "rlocd v1.2.0 (commit 0123abcd, 2026-12-03T09:00:00Z, modified) go1.26.8 linux/amd64".
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", in.Program, in.Version)
	if in.Revision != "" {
		rev := in.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " (commit %s", rev)
		if in.Time != "" {
			b.WriteString(", " + in.Time)
		}
		if in.Modified {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	} else {
		b.WriteString(" (no VCS information in the build)")
	}
	fmt.Fprintf(&b, " %s %s", in.GoVersion, in.Platform)
	return b.String()
}

// Requested reports whether args (a command line without the program name)
// ask for the version: --version or -version before any "--".
func Requested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--version", "-version":
			return true
		}
	}
	return false
}
