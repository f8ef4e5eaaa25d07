package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// permChildEnv makes the test binary a child that runs rlocctl against the
// socket the variable names and prints the error.
const permChildEnv = "RLOCCTL_TEST_PERMISSION_SOCKET"

// TestPermissionDeniedAsOtherUser: a user who may not use the socket (the
// socket is root's, mode 0660, as rlocd leaves it) is told to become root
// or join the rloc group. The test runs as root, so the user is a child
// process of this test binary with uid and gid 65534; as another user it
// skips (TestErrorsSayWhatToDo covers that case).
func TestPermissionDeniedAsOtherUser(t *testing.T) {
	if sock := os.Getenv(permChildEnv); sock != "" {
		_, err := ctl(t, sock, "stats")
		os.Stdout.WriteString("err=" + err.Error() + "\n")
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // both 0700: let the user in
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "rlocd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	// The child must be able to execute a copy of the test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "rlocctl.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err == nil {
		_, err = io.Copy(dst, src)
		dst.Close()
	}
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPermissionDeniedAsOtherUser$")
	cmd.Env = append(os.Environ(), permChildEnv+"="+sock)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := "err=permission denied on " + sock + ": run rlocctl as root or as a member of the rloc group (sudo usermod -aG rloc $USER, then log in again)\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("child said:\n%s\nwant %q", out, want)
	}
}
