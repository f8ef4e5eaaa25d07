package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// StateDir holds the state files of every run on the machine, one
// <ID>.json each. It is on a tmpfs, like the namespaces themselves, so a
// reboot clears both. It is one directory for all users of lab so that
// Clean can tell a run's namespaces from a crashed run's leftovers.
const StateDir = "/run/rloc-lab"

// StatePath returns the state file path of run id.
func StatePath(id string) string { return filepath.Join(StateDir, id+".json") }

// netnsDir is where named namespaces live (ip netns, vishvananda/netns).
const netnsDir = "/var/run/netns"

// State is what a state file records about a run, enough for another
// process to tear it down.
type State struct {
	// ID is the run identifier.
	ID string `json:"id"`
	// Name is the topology's name.
	Name string `json:"name,omitempty"`
	// File is the topology file, when known.
	File string `json:"file,omitempty"`
	// PID is the process that built the lab, and Start its start time (in
	// clock ticks since boot, from /proc/PID/stat), so a reused PID is
	// not mistaken for it.
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Detached is set when the lab is meant to outlive PID (labctl up).
	Detached bool `json:"detached"`
	// Namespaces are every namespace the run creates (node and bridge
	// namespaces in the order of the topology), with the node names.
	Namespaces []string `json:"namespaces"`
}

// NSName returns the namespace name of node (or bridge) name in the run.
func (s *State) NSName(name string) string { return NamePrefix + s.ID + "-" + name }

func writeState(s *State) (string, error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return "", fmt.Errorf("lab: state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", fmt.Errorf("lab: state: %w", err)
	}
	path := StatePath(s.ID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("lab: state: run ID %q in use? %w", s.ID, err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("lab: state: %w", err)
	}
	return path, nil
}

// ReadState reads a state file.
func ReadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab: state %s: %w", path, err)
	}
	if !idRE.MatchString(s.ID) {
		return nil, fmt.Errorf("lab: state %s: bad run ID %q", path, s.ID)
	}
	for _, n := range s.Namespaces {
		if !strings.HasPrefix(n, NamePrefix+s.ID+"-") {
			return nil, fmt.Errorf("lab: state %s: namespace %q is not of run %s", path, n, s.ID)
		}
	}
	return &s, nil
}

// Runs returns the paths of the state files of every run.
func Runs() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(StateDir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return m, nil
}

// DownState tears down the run described by the state file at path, from
// any process: it kills the processes in the run's namespaces, deletes the
// namespaces and the state file. Namespaces already gone are not errors.
func DownState(path string) error {
	s, err := ReadState(path)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(s.Namespaces) - 1; i >= 0; i-- {
		if err := removeNamespace(s.Namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(delayLogPath(s.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("lab: %w", err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("lab: %w", err))
	}
	return errors.Join(errs...)
}

// delayLogPath is where the forwarder daemon of run id writes its errors
// and, when stopped by SIGTERM, its counters.
func delayLogPath(id string) string { return filepath.Join(StateDir, id+"-delayd.log") }

// Alive reports whether the process that built the run still exists.
func (s *State) Alive() bool {
	if s.PID <= 0 {
		return false
	}
	if err := syscall.Kill(s.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := procStart(s.PID)
	return err == nil && st == s.Start
}

// Clean removes stale runs: those whose state file belongs to a process
// that is gone and that are not detached, and every namespace starting
// with NamePrefix that no state file accounts for (its state file was
// removed by hand). With all set it removes every run. It returns the
// namespaces it removed.
func Clean(all bool) ([]string, error) {
	paths, err := Runs()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	owned := map[string]bool{}
	for _, p := range paths {
		s, err := ReadState(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if all || (!s.Detached && !s.Alive()) {
			for _, n := range s.Namespaces {
				if exists(n) {
					removed = append(removed, n)
				}
			}
			if err := DownState(p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for _, n := range s.Namespaces {
			owned[n] = true
		}
	}
	ents, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("lab: %w", err))
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, NamePrefix) || owned[n] {
			continue
		}
		// A run that started after the state files were read has its
		// state file by now (it is written before any namespace).
		id, _, _ := strings.Cut(strings.TrimPrefix(n, NamePrefix), "-")
		if _, err := os.Stat(StatePath(id)); err == nil && !all {
			continue
		}
		if err := removeNamespace(n); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

// Namespaces lists the existing namespaces whose name starts with prefix.
func Namespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	var ns []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			ns = append(ns, e.Name())
		}
	}
	return ns, nil
}

func exists(ns string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, ns))
	return err == nil
}

// removeNamespace kills the processes inside the named namespace and
// deletes it.
func removeNamespace(name string) error {
	if !exists(name) {
		return nil
	}
	err := killNamespace(name)
	if derr := vnetns.DeleteNamed(name); derr != nil && !errors.Is(derr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("lab: delete %s: %w", name, derr))
	}
	return err
}

// killNamespace sends SIGKILL to every process whose network namespace is
// the named one (never to this process) and waits up to 2 s for them to go.
func killNamespace(name string) error {
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, name), &want); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("lab: %s: %w", name, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := pidsIn(want.Dev, want.Ino)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s: processes %v do not exit", name, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidsIn lists the live (non-zombie) processes whose network namespace is
// the inode dev/ino.
func pidsIn(dev, ino uint64) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil || st.Dev != dev || st.Ino != ino {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// procStart returns the start time of pid (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("lab: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("lab: short /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}
