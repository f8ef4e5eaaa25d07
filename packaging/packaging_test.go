package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
)

// need returns the path of tool; a missing one is a missing
// prerequisite (testkit's policy: fail under CI, skip otherwise).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	testkit.Require(t, tool+" (scripts/deps.sh "+tool+" installs it)", err)
	return p
}

// arMembers splits an ar archive (the .deb container) into its members.
func arMembers(t *testing.T, b []byte) (names []string, data map[string][]byte) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		t.Fatalf("not an ar archive: %q", b[:min(len(b), 8)])
	}
	data = map[string][]byte{}
	for b = b[8:]; len(b) > 0; {
		if len(b) < 60 {
			t.Fatalf("short ar header")
		}
		name := strings.TrimRight(strings.TrimSpace(string(b[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(b[48:58])))
		if err != nil || 60+size > len(b) {
			t.Fatalf("ar member %q: size %q", name, b[48:58])
		}
		names = append(names, name)
		data[name] = b[60 : 60+size]
		b = b[60+size:]
		if size%2 == 1 && len(b) > 0 {
			b = b[1:]
		}
	}
	return names, data
}

// entry is one file of a package tarball.
type entry struct {
	mode    int64
	owner   string
	body    []byte
	modTime time.Time
}

func untar(t *testing.T, name string, gz []byte) map[string]entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tr := tar.NewReader(zr)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(tr)
		out[strings.TrimPrefix(h.Name, "./")] = entry{mode: h.Mode & 0o7777, owner: h.Uname + "/" + h.Gname, body: body, modTime: h.ModTime}
	}
}

// fixture writes stand-in binaries, a man page and completions and
// returns Options over them with the real example configuration.
func fixture(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	man := filepath.Join(dir, "man")
	for _, d := range []string{bin, man} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := func(p, s string) string {
		if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, b := range []string{"rlocd", "rlocctl", "lig"} {
		w(filepath.Join(bin, b), "#!/bin/sh\necho "+b+"\n")
	}
	w(filepath.Join(man, "rlocctl.1"), ".TH RLOCCTL 1\n")
	w(filepath.Join(man, "rlocctl-stats.1"), ".TH RLOCCTL-STATS 1\n")
	return Options{Version: "1.2.3~git20261203.abc", Arch: "amd64", BinDir: bin, Config: "../configs/xtr.yaml", ManDir: man,
		Completions: map[string]string{"bash": w(filepath.Join(dir, "c.bash"), "# bash\n"),
			"zsh": w(filepath.Join(dir, "c.zsh"), "#compdef rlocctl\n"), "fish": w(filepath.Join(dir, "c.fish"), "complete -c rlocctl\n")},
		Docs:  []string{w(filepath.Join(dir, "operating.md"), "# Operating rloc\n")},
		MTime: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
}

// TestDebContents builds a package and checks its container, control data
// and files.
func TestDebContents(t *testing.T) {
	o := fixture(t)
	var deb bytes.Buffer
	if err := Build(&deb, o); err != nil {
		t.Fatal(err)
	}
	names, members := arMembers(t, deb.Bytes())
	if strings.Join(names, " ") != "debian-binary control.tar.gz data.tar.gz" || string(members["debian-binary"]) != "2.0\n" {
		t.Fatalf("ar members %q, debian-binary %q", names, members["debian-binary"])
	}
	ctl := untar(t, "control.tar.gz", members["control.tar.gz"])
	control := string(ctl["control"].body)
	for _, f := range []string{"Package: rloc\n", "Version: 1.2.3~git20261203.abc\n", "Architecture: amd64\n", "Section: net\n",
		"Priority: optional\n", "Maintainer: rloc developers <", "Description: LISP router with an AF_XDP fast path\n rlocd is"} {
		if !strings.Contains(control, f) {
			t.Errorf("control has no %q:\n%s", f, control)
		}
	}
	if s := string(ctl["conffiles"].body); s != PathConfig+"\n" {
		t.Errorf("conffiles %q", s)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if e, ok := ctl[s]; !ok || e.mode != 0o755 || !bytes.HasPrefix(e.body, []byte("#!/bin/sh\n")) {
			t.Errorf("maintainer script %s: present %v, mode %o", s, ok, e.mode)
		}
	}
	if p := string(ctl["postinst"].body); !strings.Contains(p, "addgroup --system rloc") || !strings.Contains(p, "getent group rloc") {
		t.Errorf("postinst does not create the rloc group:\n%s", p)
	}
	data := untar(t, "data.tar.gz", members["data.tar.gz"])
	cfg, err := os.ReadFile(o.Config)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]struct {
		mode int64
		body string
	}{
		PathDaemon:                         {0o755, "#!/bin/sh\necho rlocd\n"},
		PathCtl:                            {0o755, "#!/bin/sh\necho rlocctl\n"},
		PathLig:                            {0o755, "#!/bin/sh\necho lig\n"},
		PathConfig:                         {0o640, string(cfg)},
		PathUnit:                           {0o644, Unit},
		PathBashComp:                       {0o644, "# bash\n"},
		PathZshComp:                        {0o644, "#compdef rlocctl\n"},
		PathFishComp:                       {0o644, "complete -c rlocctl\n"},
		PathDocDir + "/operating.md":       {0o644, "# Operating rloc\n"},
		PathManDir + "/rlocctl.1.gz":       {0o644, ".TH RLOCCTL 1\n"},
		PathManDir + "/rlocctl-stats.1.gz": {0o644, ".TH RLOCCTL-STATS 1\n"},
		PathDropIns + "/alt.conf":          {0o644, DropIns["alt.conf"]},
		PathDropIns + "/low-port.conf":     {0o644, DropIns["low-port.conf"]},
	} {
		e, ok := data[strings.TrimPrefix(path, "/")]
		if !ok {
			t.Errorf("package has no %s", path)
			continue
		}
		body := e.body
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			body, _ = io.ReadAll(zr)
		}
		if e.mode != want.mode || e.owner != "root/root" || string(body) != want.body || !e.modTime.Equal(o.MTime) {
			t.Errorf("%s: mode %o owner %s mtime %v body %q", path, e.mode, e.owner, e.modTime, body)
		}
	}
	if md5 := string(ctl["md5sums"].body); !strings.Contains(md5, "  usr/sbin/rlocd\n") || !strings.Contains(md5, "  etc/rloc/rlocd.yaml\n") {
		t.Errorf("md5sums:\n%s", md5)
	}

	// dpkg-deb (the tool apt installs with) reads it the same way.
	dpkg := need(t, "dpkg-deb")
	file := filepath.Join(t.TempDir(), "rloc.deb")
	if err := os.WriteFile(file, deb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command(dpkg, "-I", file).CombinedOutput()
	if err != nil || !strings.Contains(string(info), " Package: rloc\n") || !strings.Contains(string(info), " Version: 1.2.3~git20261203.abc\n") {
		t.Errorf("dpkg-deb -I: %v\n%s", err, info)
	}
	list, err := exec.Command(dpkg, "-c", file).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, list)
	}
	for _, want := range []string{"-rwxr-xr-x root/root", "./usr/sbin/rlocd", "-rw-r----- root/root", "./etc/rloc/rlocd.yaml", PathUnit} {
		if !strings.Contains(string(list), want) {
			t.Errorf("dpkg-deb -c has no %q:\n%s", want, list)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	o := fixture(t)
	for _, c := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.Version = "v1.0" }, "must start with a digit"},
		{func(o *Options) { o.Arch = "" }, "no architecture"},
		{func(o *Options) { o.BinDir = "/nonexistent" }, "rlocd"},
	} {
		o := o // a copy per case
		c.edit(&o)
		if err := Build(io.Discard, o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error with %q, got %v", c.want, err)
		}
	}
}

// verifyUnit runs systemd-analyze verify on unit text inside a scratch
// root holding the system's unit files and stand-ins for the unit's
// commands, and returns what it printed.
func verifyUnit(t *testing.T, tool, unit string, dropIns ...string) (string, error) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/sbin", "bin", "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy the system's units: %v %s", err, out)
	}
	for _, c := range []string{PathDaemon, "/bin/kill"} {
		if err := os.WriteFile(filepath.Join(root, c), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/rlocd.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(dropIns) > 0 {
		d := filepath.Join(root, "etc/systemd/system/rlocd.service.d")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, text := range dropIns {
			if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)+".conf"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := exec.Command(tool, "verify", "--root="+root, "--man=no", "rlocd.service").CombinedOutput()
	return string(out), err
}

// TestUnitVerifies: systemd accepts every line of the unit (verify warns
// and still exits 0 on unknown keys and bad values, so any output fails),
// and the test does catch a broken unit.
func TestUnitVerifies(t *testing.T) {
	tool := need(t, "systemd-analyze")
	if _, err := os.Stat("/usr/lib/systemd/system/sysinit.target"); err != nil {
		testkit.Unavailable(t, "no systemd unit files to verify against (%v): scripts/deps.sh systemd-analyze installs systemd", err)
	}
	if out, err := verifyUnit(t, tool, Unit); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify rlocd.service: %v\n%s", err, out)
	}
	broken := strings.Replace(Unit, "\nProtectSystem=strict\n", "\nProtectSystem=strickt\n", 1)
	if out, _ := verifyUnit(t, tool, broken); !strings.Contains(out, "strickt") {
		t.Fatalf("verify does not report a bad value:\n%s", out)
	}
	for _, want := range []string{"Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict",
		"ProtectHome=yes", "NoNewPrivileges=yes", "SystemCallFilter=@system-service bpf\n", "PrivateTmp=yes", "RuntimeDirectory=rloc", "Group=rloc",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON CAP_IPC_LOCK\n", "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON CAP_IPC_LOCK\n",
		"LimitMEMLOCK=infinity", "ExecStart=" + PathDaemon + " --config " + PathConfig + "\n"} {
		if !strings.Contains(Unit, want) {
			t.Errorf("unit has no %q", want)
		}
	}
}

func TestDebArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386", "ppc64le": "ppc64el"} {
		if got := DebArch(goarch); got != want {
			t.Errorf("DebArch(%s) = %s", goarch, got)
		}
	}
}

// TestDropInsVerify: systemd accepts the unit with each shipped drop-in
// (systemctl edit puts it in rlocd.service.d), and the test does read
// the drop-in (a bad value in it is reported).
func TestDropInsVerify(t *testing.T) {
	tool := need(t, "systemd-analyze")
	if _, err := os.Stat("/usr/lib/systemd/system/sysinit.target"); err != nil {
		testkit.Unavailable(t, "no systemd unit files to verify against (%v): scripts/deps.sh systemd-analyze installs systemd", err)
	}
	for name, text := range DropIns {
		if out, err := verifyUnit(t, tool, Unit, text); err != nil || out != "" {
			t.Errorf("systemd-analyze verify rlocd.service with %s: %v\n%s", name, err, out)
		}
	}
	broken := strings.Replace(DropIns["alt.conf"], "DevicePolicy=closed", "DevicePolicy=closedd", 1)
	if out, _ := verifyUnit(t, tool, Unit, broken); !strings.Contains(out, "closedd") {
		t.Fatalf("verify does not report a bad value in a drop-in:\n%s", out)
	}
}

// unitCaps returns the capabilities a unit (and its drop-ins, which add
// to the sets) puts in key, and the last value of the other keys.
func unitCaps(t *testing.T, key string, texts ...string) router.CapSet {
	t.Helper()
	byName := map[string]router.Capability{}
	for c := range router.Capability(64) {
		byName[strings.ToUpper(c.String())] = c
	}
	var s router.CapSet
	for _, text := range texts {
		for _, line := range strings.Split(text, "\n") {
			v, ok := strings.CutPrefix(line, key+"=")
			if !ok {
				continue
			}
			for _, n := range strings.Fields(v) {
				c, ok := byName[n]
				if !ok {
					t.Fatalf("%s: unknown capability %q", key, n)
				}
				s |= router.Caps(c)
			}
		}
	}
	return s
}

// unitValue is the last value of key in the unit and drop-ins.
func unitValue(key string, texts ...string) string {
	v := ""
	for _, text := range texts {
		for _, line := range strings.Split(text, "\n") {
			if x, ok := strings.CutPrefix(line, key+"="); ok {
				v = x
			}
		}
	}
	return v
}

// TestUnitCoversRoles: the default unit grants exactly what an xTR needs
// and no more (a Map-Server or Map-Resolver needs a subset, none), keeps
// the devices private; with alt.conf an ALT router gets exactly its
// start-up set and /dev/net/tun, with low-port.conf a BGP discovery
// listener gets CAP_NET_BIND_SERVICE, both with nothing else added.
func TestUnitCoversRoles(t *testing.T) {
	site := []router.Interface{{Name: "s", Side: router.SideSite}, {Name: "c", Side: router.SideCore}}
	xtr := router.Config{Roles: router.Roles{ITR: true, ETR: true}, Interfaces: site}
	ms := router.Config{Roles: router.Roles{MapServer: true, MapResolver: true}}
	alt := ms
	alt.Roles.ALT = true
	altXTR := xtr
	altXTR.Roles.ALT = true
	bgp := ms
	bgp.Discovery.BGP = &slowpath.DiscoveryBGP{ASN: 65001, Listen: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	const lastCap = 40
	for _, tc := range []struct {
		name   string
		cfg    router.Config
		dropIn string
		exact  bool // the drop-in (or the unit) grants exactly the config's needs
	}{
		{"xtr", xtr, "", true},
		{"map-server", ms, "", false},
		{"alt", alt, "alt.conf", false},
		{"alt on an xtr", altXTR, "alt.conf", true},
		{"bgp discovery listener", bgp, "low-port.conf", false},
	} {
		texts := []string{Unit}
		if tc.dropIn != "" {
			texts = append(texts, DropIns[tc.dropIn])
		}
		p := tc.cfg.Privileges(lastCap)
		bounding, ambient := unitCaps(t, "CapabilityBoundingSet", texts...), unitCaps(t, "AmbientCapabilities", texts...)
		if bounding != ambient {
			t.Errorf("%s: bounding set %q, ambient %q", tc.name, bounding, ambient)
		}
		if missing := p.StartUp &^ ambient; missing != 0 {
			t.Errorf("%s: the unit with %q lacks %q", tc.name, tc.dropIn, missing)
		}
		if tc.exact && ambient != p.StartUp {
			t.Errorf("%s: the unit with %q grants %q, the router needs %q", tc.name, tc.dropIn, ambient, p.StartUp)
		}
		if tc.dropIn != "" {
			// The drop-in adds only what this role needs beyond the unit.
			added := unitCaps(t, "AmbientCapabilities", DropIns[tc.dropIn]) &^ unitCaps(t, "AmbientCapabilities", Unit)
			if want := p.StartUp &^ unitCaps(t, "AmbientCapabilities", Unit); added != want {
				t.Errorf("%s: %s adds %q, the role needs %q more", tc.name, tc.dropIn, added, want)
			}
		}
		var allowed []string
		for _, text := range texts {
			for _, line := range strings.Split(text, "\n") {
				if v, ok := strings.CutPrefix(line, "DeviceAllow="); ok {
					allowed = append(allowed, strings.Fields(v)[0])
				}
			}
		}
		if len(p.Devices) == 0 {
			if unitValue("PrivateDevices", texts...) != "yes" || len(allowed) != 0 {
				t.Errorf("%s: PrivateDevices=%s DeviceAllow %q, want yes and none", tc.name, unitValue("PrivateDevices", texts...), allowed)
			}
			continue
		}
		if unitValue("PrivateDevices", texts...) != "no" || unitValue("DevicePolicy", texts...) != "closed" || !slices.Equal(allowed, p.Devices) {
			t.Errorf("%s: PrivateDevices=%s DevicePolicy=%s DeviceAllow %q, want no, closed and %q", tc.name,
				unitValue("PrivateDevices", texts...), unitValue("DevicePolicy", texts...), allowed, p.Devices)
		}
	}
}

// TestOperatingDocMatchesUnit: docs/operating.md's description of the
// unit's capability lines and its capabilities table name exactly the
// unit's set, and the number it gives is the set's size.
func TestOperatingDocMatchesUnit(t *testing.T) {
	b, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	unit := strings.Fields(unitValue("CapabilityBoundingSet", Unit))
	slices.Sort(unit)
	numbers := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	_, bullet, ok := strings.Cut(doc, "- `CapabilityBoundingSet=` / `AmbientCapabilities=`: ")
	if !ok {
		t.Fatal("operating.md does not describe CapabilityBoundingSet=")
	}
	bullet, _, ok = strings.Cut(bullet, ", and no others.")
	if !ok {
		t.Fatalf("the CapabilityBoundingSet= bullet does not say \"and no others\": %.200q", bullet)
	}
	if len(unit) >= len(numbers) || !strings.HasPrefix(bullet, "the "+numbers[len(unit)]+" capabilities") {
		t.Errorf("operating.md says %q; the unit has %d capabilities", bullet, len(unit))
	}
	var named []string
	for _, f := range strings.Split(bullet, "`") {
		if strings.HasPrefix(f, "CAP_") {
			named = append(named, f)
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, unit) {
		t.Errorf("the bullet names %q, the unit %q", named, unit)
	}
	_, table, ok := strings.Cut(doc, "\n## Capabilities\n")
	if !ok {
		t.Fatal("operating.md has no Capabilities section")
	}
	table, _, _ = strings.Cut(table, "Not granted")
	var rows []string
	for _, line := range strings.Split(table, "\n") {
		if c, ok := strings.CutPrefix(line, "| `CAP_"); ok {
			rows = append(rows, "CAP_"+strings.SplitN(c, "`", 2)[0])
		}
	}
	slices.Sort(rows)
	if !slices.Equal(rows, unit) {
		t.Errorf("the capabilities table lists %q, the unit %q", rows, unit)
	}
}
