package lab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary act as the forwarder daemon (labctl delayd)
// for the tests that run the forwarder out of process.
func TestMain(m *testing.M) {
	if os.Getenv(delaydEnv) == "1" {
		stop := make(chan struct{})
		sig := make(chan os.Signal, 1)
		signalNotify(sig)
		go func() { <-sig; close(stop) }()
		if err := ServeDelay(os.Stdin, os.Stdout, os.Stderr, stop); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const delaydEnv = "RLOC_LAB_TEST_DELAYD"

// daemonArgv runs this test binary as the forwarder daemon.
func daemonArgv(t testing.TB) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"env", delaydEnv + "=1", exe}
}

// delayTopo is two nodes joined by one delayed link "ab" with the given
// extra keys.
func delayTopo(t testing.TB, keys string) *Topology {
	t.Helper()
	topo, err := Parse([]byte(`
nodes: [{name: a}, {name: b}]
links:
  - name: ab
` + keys + `
    ends:
      - {node: a, ifname: eth0, addrs: [10.0.0.1/24, "2001:db8::1/64"]}
      - {node: b, ifname: eth0, addrs: [10.0.0.2/24, "2001:db8::2/64"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// upWithT is upT with options.
func upWithT(t testing.TB, topo *Topology, o Options) *Lab {
	t.Helper()
	l, err := topo.UpWith(t.Context(), o)
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			testkit.Unavailable(t, "%v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	return l
}

// udpEcho echoes UDP datagrams on addr:7 inside node until the lab goes
// down, and returns a client socket in from towards it.
func udpEcho(t testing.TB, l *Lab, node string, addr netip.Addr, from string) *net.UDPConn {
	t.Helper()
	var srv, cli *net.UDPConn
	if err := l.Node(node).Do(func() (err error) {
		srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 7)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Node(from).Do(func() (err error) {
		cli, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 7)))
		return err
	}); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	_ = srv.SetReadBuffer(4 << 20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, peer, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDPAddrPort(buf[:n], peer)
		}
	}()
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
		<-done
	})
	return cli
}

// rtts sends n echo requests one at a time and returns the round-trip
// times of those answered within timeout each.
func rtts(c *net.UDPConn, n int, timeout time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	req, buf := make([]byte, 64), make([]byte, 2048)
	for i := range n {
		binary.BigEndian.PutUint64(req, uint64(i))
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return out, err
		}
		if err := c.SetReadDeadline(start.Add(timeout)); err != nil {
			return out, err
		}
		for {
			m, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return out, err
			}
			if m == len(req) && binary.BigEndian.Uint64(buf) == uint64(i) {
				out = append(out, time.Since(start))
				break
			}
		}
	}
	return out, nil
}

// TestDelayedLink runs a 20 ms link (forwarder in this process): IPv4 over
// ARP and IPv6 over ND resolve and answer, every round trip takes at least
// twice the delay, and a multicast frame of an unassigned EtherType
// crosses.
func TestDelayedLink(t *testing.T) {
	netnstest.Require(t)
	l := upWithT(t, delayTopo(t, "    delay: 20ms"), Options{})
	for _, dst := range []string{"10.0.0.2", "2001:db8::2"} {
		n, err := l.Ping("a", netip.MustParseAddr(dst), 3, 2*time.Second)
		if err != nil || n != 3 {
			t.Errorf("ping a -> %s over the delayed link: %d of 3 replies, %v", dst, n, err)
		}
	}
	c := udpEcho(t, l, "b", netip.MustParseAddr("10.0.0.2"), "a")
	rs, err := rtts(c, 10, 2*time.Second)
	if err != nil || len(rs) != 10 {
		t.Fatalf("UDP echo: %d of 10 answered, %v", len(rs), err)
	}
	for i, r := range rs {
		if r < 40*time.Millisecond {
			t.Errorf("round trip %d over a 20 ms link took %v, less than 40 ms", i, r)
		}
	}
	checkRawFrame(t, l)
	checkTCP(t, l)
	ab, ba, err := l.DelayStats("ab")
	if err != nil {
		t.Fatal(err)
	}
	if ab.Forwarded < 16 || ba.Forwarded < 15 || ab.Lost+ab.QueueFull+ab.Oversize+ab.SendErrors != 0 {
		t.Errorf("counters a->b %+v, b->a %+v", ab, ba)
	}
}

// checkTCP sends 256 KiB over TCP from a to b and back: segments larger
// than one frame (no TSO super-frames) with complete checksums, since
// the nodes' ends have transmit checksum offload off.
func checkTCP(t *testing.T, l *Lab) {
	t.Helper()
	var ln net.Listener
	if err := l.Node("b").Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.0.0.2:5001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	var c net.Conn
	if err := l.Node("a").Do(func() (err error) {
		c, err = net.DialTimeout("tcp", "10.0.0.2:5001", 3*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, 256<<10)
	for i := range want {
		want[i] = byte(i * 7)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("TCP echo over the delayed link: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("TCP echo over the delayed link: data differs")
	}
}

// checkRawFrame sends an Ethernet frame of EtherType 0x88b5 (IEEE local
// experimental) to a multicast MAC from a's eth0 and expects it on b's,
// then the same in VLAN 5 and expects the tag to arrive too.
func checkRawFrame(t *testing.T, l *Lab) {
	t.Helper()
	const etherType = 0x88b5
	open := func(node string, proto uint16) int {
		var fd int
		if err := l.Node(node).Do(func() error {
			idx, err := ifIndex("eth0")
			if err != nil {
				return err
			}
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
			if err != nil {
				return err
			}
			return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: idx})
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	tv := unix.NsecToTimeval(int64(3 * time.Second))
	setup := func(fd int) int {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			t.Fatal(err)
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	rx, tx := setup(open("b", etherType)), open("a", etherType)
	frame := []byte{0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01, 0x02, 0, 0, 0, 0, 1, etherType >> 8, etherType & 0xff}
	frame = append(frame, []byte("rloc lab: any EtherType crosses a delayed link......")...)
	if _, err := unix.Write(tx, frame); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 2048), make([]byte, 256)
	var n, oobn int
	err := retryIntr(func() (err error) { n, oobn, _, _, err = unix.Recvmsg(rx, buf, oob, 0); return err })
	if err != nil {
		t.Fatalf("multicast frame of EtherType %#x not received: %v", etherType, err)
	}
	if string(buf[:n]) != string(frame) || auxTag(oob[:oobn]) != 0 {
		t.Errorf("frame received as %x (tag %#x), sent %x", buf[:n], auxTag(oob[:oobn]), frame)
	}
	// The receive path strips an 802.1Q tag into metadata (on b as on
	// the forwarder's side): it must be back on the wire to b. A tagged
	// frame (and no VLAN device) reaches only the sockets of every
	// protocol with its tag, so rxAll is one of those; opened now, it
	// does not see the untagged frame.
	rxAll := setup(open("b", unix.ETH_P_ALL))
	tagged := slices.Concat(frame[:12], []byte{0x81, 0x00, 0x00, 0x05}, frame[12:])
	if _, err := unix.Write(tx, tagged); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err = retryIntr(func() (err error) { n, oobn, _, _, err = unix.Recvmsg(rxAll, buf, oob, 0); return err })
		if err != nil || i == 100 {
			t.Fatalf("VLAN-tagged frame not received (%d other frames): %v", i, err)
		}
		if string(buf[12:n]) != string(frame[12:]) {
			continue // the untagged frame, IPv6 neighbour discovery, ...
		}
		if tag := auxTag(oob[:oobn]); string(buf[:n]) != string(frame) || tag != 0x81000005 {
			t.Errorf("tagged frame received as %x, tag %#x (want 0x81000005)", buf[:n], tag)
		}
		break
	}
}

// TestDelayedLinkLoss sends 1000 datagrams over a link losing 20 %: about
// a fifth (wide bounds) is lost, counted, and the rest arrives.
func TestDelayedLinkLoss(t *testing.T) {
	netnstest.Require(t)
	l := upWithT(t, delayTopo(t, "    loss: 20%\n    seed: 7"), Options{})
	// Resolve ARP first (its frames may be lost too).
	if n, err := l.Ping("a", netip.MustParseAddr("10.0.0.2"), 20, 2*time.Second); err != nil || n == 0 {
		t.Fatalf("ping over the lossy link: %d of 20, %v", n, err)
	}
	var srv, cli *net.UDPConn
	if err := l.Node("b").Do(func() (err error) {
		srv, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 9})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	if err := l.Node("a").Do(func() (err error) {
		cli, err = net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 9})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	before, _, _ := l.DelayStats("ab")
	const n = 1000
	msg := make([]byte, 32)
	for i := range n {
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	var after DelayStats
	testkit.WaitFor(t, "the forwarder to take every datagram", func() error {
		after, _, _ = l.DelayStats("ab")
		if seen := after.Forwarded + after.Lost - before.Forwarded - before.Lost; seen < n {
			return fmt.Errorf("%d of %d frames seen", seen, n)
		}
		return nil
	})
	lost := after.Lost - before.Lost
	if lost < n*12/100 || lost > n*28/100 {
		t.Errorf("lost %d of %d frames at 20%% loss", lost, n)
	}
	if after.QueueFull+after.SendErrors+after.Oversize != 0 {
		t.Errorf("unexpected drops: %+v", after)
	}
	got := 0
	buf := make([]byte, 64)
	for {
		_ = srv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := srv.Read(buf); err != nil {
			break
		}
		got++
	}
	// Every forwarded datagram arrives; other frames (IPv6 router
	// solicitations, ...) may have crossed too, so forwarded is an upper
	// bound.
	if fwd := int(after.Forwarded - before.Forwarded); got > fwd || got < fwd-10 || got < n-int(lost)-10 {
		t.Errorf("received %d datagrams, forwarded %d frames, lost %d", got, fwd, lost)
	}
}

// TestDelayedLinkDaemon runs the forwarder as a daemon in the forwarder
// namespace (as labctl up does): traffic is delayed, and Down stops the
// daemon and removes its namespace and log.
func TestDelayedLinkDaemon(t *testing.T) {
	netnstest.Require(t)
	l := upWithT(t, delayTopo(t, "    delay: 10ms"), Options{DelayCommand: daemonArgv(t)})
	c := udpEcho(t, l, "b", netip.MustParseAddr("2001:db8::2"), "a")
	rs, err := rtts(c, 5, 2*time.Second)
	if err != nil || len(rs) != 5 {
		t.Fatalf("UDP echo over IPv6: %d of 5 answered, %v", len(rs), err)
	}
	if slices.Min(rs) < 20*time.Millisecond {
		t.Errorf("round trips %v over a 10 ms link, one below 20 ms", rs)
	}
	if _, _, err := l.DelayStats("ab"); err == nil {
		t.Error("DelayStats answered for an out-of-process forwarder")
	}
	pid := l.fwdProc.Cmd.Process.Pid
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("forwarder daemon %d after Down: %v", pid, err)
	}
	assertGone(t, l.ID())
	if _, err := os.Stat(delayLogPath(l.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("forwarder log after Down: %v", err)
	}
}

const failingEnv = "RLOC_LAB_TEST_FAILING_ID"

// TestDelayedLinkDownOnFailure runs a test that fails with a delayed lab
// (and its forwarder daemon) up: the lab is gone when that test ends. The
// failing test is this test's subtest "child", run in a child process
// (failingEnv set) so that its failure is not this run's.
func TestDelayedLinkDownOnFailure(t *testing.T) {
	if id := os.Getenv(failingEnv); id != "" {
		t.Run("child", func(t *testing.T) {
			upWithT(t, delayTopo(t, "    delay: 5ms\n    loss: 1%"), Options{ID: id, DelayCommand: daemonArgv(t)})
			t.Fatal("failing on purpose with the lab up")
		})
		return
	}
	netnstest.Require(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id := "x" + netns.Suffix()
	c := exec.CommandContext(t.Context(), exe, "-test.run=^TestDelayedLinkDownOnFailure$/^child$", "-test.count=1")
	c.Env = append(os.Environ(), failingEnv+"="+id)
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "failing on purpose") {
		t.Fatalf("child test: %v\n%s", err, out)
	}
	assertGone(t, id)
	for _, p := range []string{StatePath(id), delayLogPath(id)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the failed test: %v", p, err)
		}
	}
}

func signalNotify(c chan os.Signal) { signal.Notify(c, syscall.SIGTERM, os.Interrupt) }
