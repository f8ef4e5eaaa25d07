package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// dumpcapDrain is how long Stop waits before stopping dumpcap, longer than
// its capture buffer timeout.
const dumpcapDrain = 1200 * time.Millisecond

// tcpdumpSettle is how long a tcpdump capture file must stay the same size
// before Stop stops tcpdump, and tcpdumpSettleMax the longest Stop waits for
// that.
const (
	tcpdumpSettle    = 150 * time.Millisecond
	tcpdumpSettleMax = 2 * time.Second
)

// Capture is a packet capture running in a node (tcpdump, or dumpcap from
// the tshark package when tcpdump is absent), writing a pcap file.
type Capture struct {
	// File is the pcap file being written.
	File string
	// Tool is the capture program used ("tcpdump" or "dumpcap").
	Tool string
	p    *Proc
	// summary is what the tool printed after it started (its statistics
	// on exit), kept once drained is closed.
	summary []string
	drained chan struct{}
}

// captureTools are the programs Capture can run, in order of preference.
var captureTools = [...]string{"tcpdump", "dumpcap"}

// CaptureTool returns the capture program Capture will use, or an error
// naming the script that installs one.
func CaptureTool() (string, error) {
	for _, t := range captureTools {
		if _, err := exec.LookPath(t); err == nil {
			return t, nil
		}
	}
	return "", errors.New("lab: neither tcpdump nor dumpcap is installed (scripts/deps.sh tcpdump)")
}

// Capture starts capturing on ifname inside node into file (pcap format),
// with the BPF filter (empty: everything), and returns once the capture
// runs. An existing file is replaced. Stop ends it; Down stops it too.
func (l *Lab) Capture(node, ifname, filter, file string) (*Capture, error) {
	tool, err := CaptureTool()
	if err != nil {
		return nil, err
	}
	return l.capture(tool, node, ifname, filter, file)
}

// capture runs Capture with the given tool.
func (l *Lab) capture(tool, node, ifname, filter, file string) (*Capture, error) {
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab: capture: %w", err)
	}
	var argv []string
	var ready string
	switch tool {
	case "tcpdump":
		// In immediate mode libpcap's ring has one slot per snaplen: with
		// the default 262144 bytes a 2 MB buffer holds 8 frames, and a
		// capture descheduled for a moment on a busy machine drops. Lab
		// frames fit 4096 bytes; 16 MB hold 4096 of them.
		argv = []string{"tcpdump", "-n", "-U", "--immediate-mode", "-s", "4096", "-B", "16384", "-Z", "root", "-i", ifname, "-w", file}
		if filter != "" {
			argv = append(argv, filter)
		}
		ready = "listening on"
	default:
		argv = []string{"dumpcap", "-q", "-P", "-s", "4096", "-B", "16", "-i", ifname, "-w", file}
		if filter != "" {
			argv = append(argv, "-f", filter)
		}
		ready = "Capturing on"
	}
	c, err := l.Command(node, argv...)
	if err != nil {
		return nil, err
	}
	// An os.Pipe rather than StderrPipe: Proc waits for the process on its
	// own, which must not close the reading end under the scanner.
	stderr, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.Stderr = w
	p, err := l.StartCmd(c)
	w.Close()
	if err != nil {
		stderr.Close()
		return nil, err
	}
	cp := &Capture{File: file, Tool: tool, p: p, drained: make(chan struct{})}
	readyc := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		defer close(cp.drained)
		defer stderr.Close()
		for sc.Scan() {
			switch {
			case !seen && strings.Contains(sc.Text(), ready):
				seen = true
				readyc <- true
			case seen && len(cp.summary) < 16:
				cp.summary = append(cp.summary, sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		if !seen {
			readyc <- false
		}
	}()
	select {
	case ok := <-readyc:
		if ok && tool == "tcpdump" {
			return cp, nil
		}
		if ok {
			// dumpcap announces itself before the capture runs; it writes
			// the file header once it does.
			for range 100 {
				if fi, err := os.Stat(file); err == nil && fi.Size() >= 24 {
					return cp, nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			_ = p.Stop(time.Second)
			return nil, fmt.Errorf("lab: capture on %s/%s: %s wrote no file header in 5 s", node, ifname, tool)
		}
		err := p.Wait()
		return nil, fmt.Errorf("lab: capture on %s/%s: %s exited: %v", node, ifname, tool, err)
	case <-time.After(15 * time.Second):
		_ = p.Stop(time.Second)
		return nil, fmt.Errorf("lab: capture on %s/%s: %s not listening after 15 s", node, ifname, tool)
	}
}

// Stop ends the capture (SIGINT, so the file is complete) and waits for it.
func (c *Capture) Stop() error {
	select {
	case <-c.p.Done():
		return nil
	default:
	}
	if c.Tool != "tcpdump" {
		// dumpcap has no immediate mode and drops what its capture
		// buffer still holds on SIGINT: let the buffer timeout pass.
		time.Sleep(dumpcapDrain)
	} else {
		// tcpdump leaves the frames its ring still holds unwritten on
		// SIGINT; on a busy machine it can lag behind the traffic. It
		// writes each frame as it takes it (-U): wait until the file
		// stops growing.
		c.settle(tcpdumpSettle, tcpdumpSettleMax)
	}
	_ = syscall.Kill(c.p.Cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-c.p.Done():
	case <-time.After(10 * time.Second):
		_ = c.p.Stop(time.Second)
		return fmt.Errorf("lab: %s did not stop on SIGINT", c.Tool)
	}
	var ee *exec.ExitError
	if err := c.p.Wait(); err != nil && !errors.As(err, &ee) {
		return err
	}
	select {
	case <-c.drained:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// settle waits until the capture file has not grown for quiet, at most
// max.
func (c *Capture) settle(quiet, max time.Duration) {
	const poll = 25 * time.Millisecond
	size := int64(-1)
	still := time.Duration(0)
	for waited := time.Duration(0); waited < max && still < quiet; waited += poll {
		var now int64
		if fi, err := os.Stat(c.File); err == nil {
			now = fi.Size()
		}
		if now == size {
			still += poll
		} else {
			size, still = now, 0
		}
		time.Sleep(poll)
	}
}

// KernelDrops returns the packets the capture lost in the kernel (its
// socket buffer was full), as the tool reported on exit; ok is false when
// it reported no such figure. Call it after Stop.
func (c *Capture) KernelDrops() (n int, ok bool) {
	select {
	case <-c.drained:
	default:
		return 0, false
	}
	for _, l := range c.summary {
		// tcpdump: "N packets dropped by kernel"; dumpcap: "Packets
		// received/dropped on interface 'x': R/N (...)".
		if _, err := fmt.Sscanf(l, "%d packets dropped by kernel", &n); err == nil {
			return n, true
		}
		if i := strings.LastIndex(l, "': "); i >= 0 && strings.HasPrefix(l, "Packets received/dropped") {
			var r int
			if _, err := fmt.Sscanf(l[i+3:], "%d/%d", &r, &n); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}
