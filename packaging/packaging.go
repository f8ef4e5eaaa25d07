// Package packaging builds rloc's Debian package with nfpm used as a
// library: the daemon and the CLIs, an example configuration as a conffile,
// the systemd unit (rlocd.service beside this file), man pages and shell
// completions, and maintainer scripts that create the rloc group owning the
// management socket. `make deb` runs packaging/cmd/mkdeb, which builds the
// binaries and calls Build; docs/operating.md describes the result.
package packaging

import (
	"compress/gzip"
	_ "embed" // the unit and the maintainer scripts
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Unit is the systemd unit installed as /usr/lib/systemd/system/rlocd.service.
//
//go:embed rlocd.service
var Unit string

// DropIns are the systemd drop-ins shipped as examples in PathDropIns
// (name: text): alt.conf for an ALT router (/dev/net/tun and
// CAP_NET_BIND_SERVICE for BGP), low-port.conf for a BGP discovery
// listener or another listener below port 1024. The unit itself stays
// least-privilege for the xTR and mapping-system roles; an operator adds
// one with systemctl edit rlocd (docs/operating-privileges.md).
var DropIns = map[string]string{"alt.conf": altDropIn, "low-port.conf": lowPortDropIn}

var (
	//go:embed alt.conf
	altDropIn string
	//go:embed low-port.conf
	lowPortDropIn string
	//go:embed postinst
	postinst string
	//go:embed prerm
	prerm string
	//go:embed postrm
	postrm string
)

// Paths of the installed files.
const (
	PathDaemon   = "/usr/sbin/rlocd"
	PathCtl      = "/usr/bin/rlocctl"
	PathLig      = "/usr/bin/lig"
	PathConfig   = "/etc/rloc/rlocd.yaml"
	PathUnit     = "/usr/lib/systemd/system/rlocd.service"
	PathManDir   = "/usr/share/man/man1"
	PathDocDir   = "/usr/share/doc/rloc"
	PathDropIns  = "/usr/share/doc/rloc/examples/rlocd.service.d"
	PathBashComp = "/usr/share/bash-completion/completions/rlocctl"
	PathZshComp  = "/usr/share/zsh/vendor-completions/_rlocctl"
	PathFishComp = "/usr/share/fish/vendor_completions.d/rlocctl.fish"
)

// Options is what goes into a package.
type Options struct {
	// Version is the Debian version ("0.1.0", "0.0.0~git20261203.e3335fd");
	// it must start with a digit.
	Version string
	// Arch is the Debian architecture (amd64, arm64, ...).
	Arch string
	// BinDir holds the built rlocd, rlocctl and lig.
	BinDir string
	// Config is the example configuration installed as PathConfig.
	Config string
	// ManDir, when set, holds man pages (*.1) to install compressed.
	ManDir string
	// Completions maps "bash", "zsh" and "fish" to completion scripts.
	Completions map[string]string
	// Docs are files installed into PathDocDir.
	Docs []string
	// MTime stamps every file (a fixed time makes the build reproducible).
	MTime time.Time
}

// Build writes the .deb described by o to w. Scratch files go to a
// temporary directory removed on return.
func Build(w io.Writer, o Options) error {
	if o.Version == "" || o.Version[0] < '0' || o.Version[0] > '9' {
		return fmt.Errorf("packaging: version %q must start with a digit", o.Version)
	}
	if o.Arch == "" {
		return fmt.Errorf("packaging: no architecture")
	}
	tmp, err := os.MkdirTemp("", "rloc-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	write := func(name, text string) (string, error) {
		p := filepath.Join(tmp, name)
		return p, os.WriteFile(p, []byte(text), 0o644)
	}
	var scripts nfpm.Scripts
	unit, err := write("rlocd.service", Unit)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		dst  *string
		name string
		text string
	}{{&scripts.PostInstall, "postinst", postinst}, {&scripts.PreRemove, "prerm", prerm}, {&scripts.PostRemove, "postrm", postrm}} {
		if *s.dst, err = write(s.name, s.text); err != nil {
			return err
		}
	}
	info := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: o.MTime}
	}
	contents := files.Contents{
		{Source: filepath.Join(o.BinDir, "rlocd"), Destination: PathDaemon, FileInfo: info(0o755)},
		{Source: filepath.Join(o.BinDir, "rlocctl"), Destination: PathCtl, FileInfo: info(0o755)},
		{Source: filepath.Join(o.BinDir, "lig"), Destination: PathLig, FileInfo: info(0o755)},
		// The example holds a Map-Server key: readable by root only.
		{Source: o.Config, Destination: PathConfig, Type: files.TypeConfigNoReplace, FileInfo: info(0o640)},
		{Destination: filepath.Dir(PathConfig), Type: files.TypeDir, FileInfo: info(0o755)},
		{Source: unit, Destination: PathUnit, FileInfo: info(0o644)},
	}
	for _, name := range slices.Sorted(maps.Keys(DropIns)) {
		src, err := write(name, DropIns[name])
		if err != nil {
			return err
		}
		contents = append(contents, &files.Content{Source: src, Destination: PathDropIns + "/" + name, FileInfo: info(0o644)})
	}
	for shell, dst := range map[string]string{"bash": PathBashComp, "zsh": PathZshComp, "fish": PathFishComp} {
		if src, ok := o.Completions[shell]; ok {
			contents = append(contents, &files.Content{Source: src, Destination: dst, FileInfo: info(0o644)})
		}
	}
	for _, d := range o.Docs {
		contents = append(contents, &files.Content{Source: d, Destination: PathDocDir + "/" + filepath.Base(d), FileInfo: info(0o644)})
	}
	if o.ManDir != "" {
		pages, err := filepath.Glob(filepath.Join(o.ManDir, "*.1"))
		if err != nil {
			return err
		}
		for _, p := range pages {
			gz := filepath.Join(tmp, filepath.Base(p)+".gz")
			if err := gzipFile(p, gz, o.MTime); err != nil {
				return err
			}
			contents = append(contents, &files.Content{Source: gz, Destination: PathManDir + "/" + filepath.Base(gz), FileInfo: info(0o644)})
		}
	}
	pkg := nfpm.WithDefaults(&nfpm.Info{
		Name:          "rloc",
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       o.Version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "rloc developers <rloc-router@users.noreply.github.com>",
		Homepage:      "https://github.com/rloc-router/rloc",
		License:       "see /usr/share/doc/rloc",
		Description: "LISP router with an AF_XDP fast path\n" +
			"rlocd is a userspace LISP (RFC 9300/9301) xTR, proxy xTR, RTR, Map-Server\n" +
			"and Map-Resolver; rlocctl inspects and changes it over its management\n" +
			"socket; lig asks a Map-Resolver for a mapping.",
		MTime: o.MTime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  scripts,
		},
	})
	if err := nfpm.Validate(pkg); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	if err := deb.Default.Package(pkg, w); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	return nil
}

// gzipFile compresses src into dst with a fixed header time.
func gzipFile(src, dst string, mtime time.Time) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	zw.ModTime = mtime
	zw.Name = strings.TrimSuffix(filepath.Base(dst), ".gz")
	if _, err := zw.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// DebArch is the Debian name of a GOARCH.
func DebArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return goarch
}
