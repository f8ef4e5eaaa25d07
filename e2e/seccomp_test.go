package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/packaging"
)

// The systemd unit's SystemCallFilter, enforced without systemd: this
// machine's PID 1 is not systemd, so a test cannot start the unit itself.
// Instead the test binary re-executes itself as a wrapper (seccompEnv set)
// that installs the same allow-list as a seccomp filter and then execs the
// rest of its command line; a system call outside the list kills the
// process (SIGSYS), as systemd's default action does.

// seccompEnv carries the allowed system call numbers (comma-separated) to
// the re-executed test binary.
const seccompEnv = "RLOC_E2E_SECCOMP_ALLOW"

// unistdHeader lists this architecture's system call numbers (Debian
// linux-libc-dev, which gcc's libc6-dev brings).
const unistdHeader = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"

func TestMain(m *testing.M) {
	if allow := os.Getenv(seccompEnv); allow != "" {
		os.Exit(seccompExec(allow, os.Args[1:]))
	}
	os.Exit(runShared(m))
}

// runShared runs the tests with tools.dir, the directory buildTool's
// commands go to, removed when they end.
func runShared(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rloc-e2e-bin-")
	if err == nil {
		err = os.Chmod(dir, 0o755) // a daemon may run as nobody (TestLeastPrivilege)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: a directory for the built commands:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tools.dir = dir
	return m.Run()
}

// seccompExec installs a filter that allows exactly the system calls in
// allow (and kills the process on any other), then executes args. It
// returns only on failure.
func seccompExec(allow string, args []string) int {
	runtime.LockOSThread() // the filter is the calling thread's, and exec keeps it
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "seccomp wrapper: no command")
		return 127
	}
	const (
		retAllow = 0x7fff0000 // SECCOMP_RET_ALLOW
		retKill  = 0x80000000 // SECCOMP_RET_KILL_PROCESS
		archX86  = 0xc000003e // AUDIT_ARCH_X86_64
	)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, K: archX86},
		{Code: unix.BPF_RET | unix.BPF_K, K: retKill},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
	}
	for _, s := range strings.Split(allow, ",") {
		nr, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			fmt.Fprintf(os.Stderr, "seccomp wrapper: system call number %q: %v\n", s, err)
			return 127
		}
		prog = append(prog,
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: uint32(nr)},
			unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: retAllow})
	}
	prog = append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: retKill})
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil { // the unit's NoNewPrivileges=yes
		fmt.Fprintln(os.Stderr, "seccomp wrapper: no_new_privs:", err)
		return 127
	}
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fp)), 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "seccomp wrapper: install the filter:", err)
		return 127
	}
	path, err := exec.LookPath(args[0])
	if err == nil {
		err = unix.Exec(path, args, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "seccomp wrapper: exec %s: %v\n", args[0], err)
	return 127
}

// unitSyscallFilter returns the system call numbers that the unit's
// SystemCallFilter= lines allow, groups expanded by systemd-analyze, and
// the names this architecture has no number for (32-bit calls, say).
func unitSyscallFilter(t *testing.T) (allowed []string, numbers map[string]int) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	testkit.Require(t, "systemd-analyze (systemd)", err)
	hdr, err := os.Open(unistdHeader)
	testkit.Require(t, unistdHeader+" (linux-libc-dev)", err)
	defer hdr.Close()
	numbers = map[string]int{}
	sc := bufio.NewScanner(hdr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "#define" && strings.HasPrefix(f[1], "__NR_") {
			if n, err := strconv.Atoi(f[2]); err == nil {
				numbers[strings.TrimPrefix(f[1], "__NR_")] = n
			}
		}
	}
	if len(numbers) < 300 {
		t.Fatalf("%s: %d system calls, not a system call table", unistdHeader, len(numbers))
	}
	out, err := exec.Command(analyze, "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "@") && !strings.Contains(line, " ") && cur == "":
			cur = line
		default:
			if cur != "" {
				groups[cur] = append(groups[cur], line)
			}
		}
		if line == "" {
			cur = ""
		}
	}
	var lines int
	seen := map[string]bool{}
	var add func(string)
	add = func(s string) {
		if seen[s] {
			return
		}
		seen[s] = true
		if strings.HasPrefix(s, "@") {
			m, ok := groups[s]
			if !ok {
				t.Fatalf("the unit names %s, which systemd-analyze does not know", s)
			}
			for _, x := range m {
				add(x)
			}
			return
		}
		allowed = append(allowed, s)
	}
	for _, line := range strings.Split(packaging.Unit, "\n") {
		v, ok := strings.CutPrefix(line, "SystemCallFilter=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "~") {
			t.Fatalf("SystemCallFilter=%s: a deny list; this test enforces allow lists only", v)
		}
		lines++
		for _, s := range strings.Fields(v) {
			add(s)
		}
	}
	if lines == 0 {
		t.Fatal("the unit has no SystemCallFilter=")
	}
	return allowed, numbers
}

// seccompWrapper returns the command prefix that runs a program under the
// unit's system call filter.
func seccompWrapper(t *testing.T) []string {
	t.Helper()
	names, numbers := unitSyscallFilter(t)
	var nrs []string
	for _, s := range names {
		if n, ok := numbers[s]; ok {
			nrs = append(nrs, strconv.Itoa(n))
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"env", seccompEnv + "=" + strings.Join(nrs, ","), self}
}

// TestSeccompWrapperEnforces: the wrapper lets a program through that
// stays inside the filter and kills one that makes a call outside it
// (chroot(2) is in @privileged, which the unit does not allow), so TestLeastPrivilege's
// daemons really run under the unit's filter.
func TestSeccompWrapperEnforces(t *testing.T) {
	wrap := seccompWrapper(t)
	if out, err := exec.Command(wrap[0], append(wrap[1:], "true")...).CombinedOutput(); err != nil {
		t.Fatalf("true under the filter: %v\n%s", err, out)
	}
	chroot, err := exec.LookPath("chroot")
	testkit.Require(t, "chroot (coreutils)", err)
	if out, err := exec.Command(chroot, "/", "true").CombinedOutput(); err != nil {
		t.Fatalf("chroot without the filter: %v\n%s", err, out)
	}
	err = exec.Command(wrap[0], append(wrap[1:], chroot, "/", "true")...).Run()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("chroot under the filter: %v, want killed by SIGSYS", err)
	}
	if ws, _ := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("chroot under the filter: %v, want killed by SIGSYS", err)
	}
}
