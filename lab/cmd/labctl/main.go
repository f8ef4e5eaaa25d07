// Command labctl brings lab topologies up and down from scripts:
//
//	labctl up [-id ID] FILE   build FILE, print the run ID
//	labctl down ID|FILE...     tear runs down (by ID, or every run of FILE)
//	labctl ns ID NODE          print the namespace name of NODE
//	labctl exec ID NODE CMD... run CMD inside NODE
//	labctl ls                  list runs
//	labctl clean [-all]        remove stale runs (-all: every run)
//	labctl check FILE...       validate topology files
//	labctl delayd              the forwarder of delayed links (started by up)
//
// A run lives on after `labctl up` exits; its state file (in /run/rloc-lab)
// lets `down` find it from any process. A run with delayed links (delay,
// jitter or loss) also leaves a forwarder running: up re-executes labctl as
// `labctl delayd` inside the run's forwarder namespace, and down kills it
// with that namespace.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/rloc-router/rloc/lab"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "labctl:", err)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		os.Exit(1)
	}
}

const usage = `usage:
  labctl up [-id ID] FILE
  labctl down ID|FILE...
  labctl ns ID NODE
  labctl exec ID NODE CMD...
  labctl ls
  labctl clean [-all]
  labctl check FILE...
  labctl delayd   (internal: reads its links as JSON on stdin)`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command\n%s", usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("labctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "run ID for up (default: random)")
	all := fs.Bool("all", false, "clean: remove every run, not only stale ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	switch cmd {
	case "up":
		if len(args) != 1 {
			return errors.New("up needs one topology file")
		}
		return up(args[0], *id, stdout)
	case "down":
		if len(args) == 0 {
			return errors.New("down needs run IDs or topology files")
		}
		return down(args, stdout)
	case "ns":
		if len(args) != 2 {
			return errors.New("ns needs a run ID and a node")
		}
		s, err := findRun(args[0])
		if err != nil {
			return err
		}
		name, err := nodeNS(s, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, name)
		return nil
	case "exec":
		if len(args) < 3 {
			return errors.New("exec needs a run ID, a node and a command")
		}
		s, err := findRun(args[0])
		if err != nil {
			return err
		}
		name, err := nodeNS(s, args[1])
		if err != nil {
			return err
		}
		c := exec.Command("ip", append([]string{"netns", "exec", name}, args[2:]...)...)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, stdout, stderr
		return c.Run()
	case "ls":
		return list(stdout)
	case "clean":
		removed, err := lab.Clean(*all)
		for _, n := range removed {
			fmt.Fprintln(stdout, "removed", n)
		}
		return err
	case "check":
		if len(args) == 0 {
			return errors.New("check needs topology files")
		}
		var errs []error
		for _, f := range args {
			if _, err := lab.Load(f); err != nil {
				errs = append(errs, err)
			} else {
				fmt.Fprintln(stdout, f, "ok")
			}
		}
		return errors.Join(errs...)
	case "delayd":
		return delayd(stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func up(file, id string, stdout io.Writer) error {
	t, err := lab.Load(file)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	l, err := t.UpWith(ctx, lab.Options{ID: id, Detached: true, File: abs, DelayCommand: []string{exe, "delayd"}})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, l.ID())
	return nil
}

// delayd forwards the delayed links described on stdin until SIGTERM or
// SIGINT; lab.UpWith starts it inside the forwarder namespace.
func delayd(stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return lab.ServeDelay(os.Stdin, stdout, stderr, ctx.Done())
}

func down(args []string, stdout io.Writer) error {
	var errs []error
	for _, a := range args {
		paths, err := matchRuns(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range paths {
			if err := lab.DownState(p); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintln(stdout, "down", strings.TrimSuffix(filepath.Base(p), ".json"))
		}
	}
	return errors.Join(errs...)
}

// matchRuns returns the state files of run ID a, or of every run of the
// topology file a. No run of an existing topology file is not an error.
func matchRuns(a string) ([]string, error) {
	if fi, err := os.Stat(a); err == nil && !fi.IsDir() {
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		paths, err := lab.Runs()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, p := range paths {
			if s, err := lab.ReadState(p); err == nil && s.File == abs {
				out = append(out, p)
			}
		}
		return out, nil
	}
	p := lab.StatePath(a)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("no run %q", a)
	}
	return []string{p}, nil
}

func findRun(id string) (*lab.State, error) {
	return lab.ReadState(lab.StatePath(id))
}

func nodeNS(s *lab.State, node string) (string, error) {
	name := s.NSName(node)
	for _, n := range s.Namespaces {
		if n == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("run %s has no node %q", s.ID, node)
}

func list(stdout io.Writer) error {
	paths, err := lab.Runs()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tFILE\tPID\tALIVE\tDETACHED\tNAMESPACES")
	var errs []error
	for _, p := range paths {
		s, err := lab.ReadState(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%v\t%v\t%d\n", s.ID, s.Name, s.File, s.PID, s.Alive(), s.Detached, len(s.Namespaces))
	}
	return errors.Join(w.Flush(), errors.Join(errs...))
}
