package router

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Capability is a Linux capability (capabilities(7)).
type Capability uint8

// The capabilities a router may need (docs/operating-privileges.md says
// why each).
const (
	CapNetAdmin Capability = unix.CAP_NET_ADMIN
	CapNetRaw   Capability = unix.CAP_NET_RAW
	CapIPCLock  Capability = unix.CAP_IPC_LOCK
	CapSysAdmin Capability = unix.CAP_SYS_ADMIN
	CapBPF      Capability = unix.CAP_BPF
	CapPerfmon  Capability = unix.CAP_PERFMON
	CapSetPCap  Capability = unix.CAP_SETPCAP
	// CapNetBindService binds ports below 1024: a control, /metrics or
	// status address configured on such a port, and BGP on TCP 179 (the
	// ALT's sessions, discovery.bgp.listen).
	CapNetBindService Capability = unix.CAP_NET_BIND_SERVICE
)

var capNames = map[Capability]string{
	CapNetAdmin: "cap_net_admin", CapNetRaw: "cap_net_raw", CapIPCLock: "cap_ipc_lock",
	CapSysAdmin: "cap_sys_admin", CapBPF: "cap_bpf", CapPerfmon: "cap_perfmon", CapSetPCap: "cap_setpcap",
	CapNetBindService: "cap_net_bind_service",
}

// String is the capability's name as capabilities(7), setpriv and
// systemd write it (cap_net_admin).
func (c Capability) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return "cap_" + strconv.Itoa(int(c))
}

// CapSet is a set of capabilities, bit c for capability c (the layout of
// CapEff in /proc/PID/status).
type CapSet uint64

// Caps returns the set of cs.
func Caps(cs ...Capability) CapSet {
	var s CapSet
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s CapSet) Has(c Capability) bool { return s&(1<<c) != 0 }

// String lists the set's names, comma-separated ("" when empty).
func (s CapSet) String() string {
	var names []string
	for c := range Capability(64) {
		if s.Has(c) {
			names = append(names, c.String())
		}
	}
	return strings.Join(names, ",")
}

// Privileges are the capabilities a router with a given configuration
// needs: Start needs StartUp, the running router and Stop need Running
// (a subset).
type Privileges struct {
	// StartUp is needed by Start: loading and attaching the XDP programs,
	// the AF_XDP sockets and their UMEM, the raw and packet sockets.
	StartUp CapSet
	// Running is needed after Start: the neighbour entries the fast path
	// asks the kernel to resolve, detaching the XDP programs and
	// withdrawing the advertised routes on Stop; with multicast
	// receivers, the IGMP/MLD sockets the engine opens once running.
	Running CapSet
	// Devices are the device nodes Start opens (/dev/net/tun for the
	// ALT's GRE), which a service manager must not hide (systemd's
	// PrivateDevices=yes does).
	Devices []string
}

// DevNetTUN is the TUN clone device the ALT role opens.
const DevNetTUN = "/dev/net/tun"

// Privileges returns the capabilities c needs, for a kernel whose
// highest capability is lastCap (/proc/sys/kernel/cap_last_cap; before
// Linux 5.8, which has no CAP_BPF, BPF needs CAP_SYS_ADMIN). A router
// without a data plane (Map-Server, Map-Resolver) needs none: its
// sockets are UDP above 1024 and a Unix socket. A control, /metrics or
// status address on a port below 1024, the ALT role and a BGP discovery
// listener (discovery.bgp.listen, TCP 179) add CAP_NET_BIND_SERVICE to
// StartUp; the ALT role also needs DevNetTUN.
func (c *Config) Privileges(lastCap int) Privileges {
	var p Privileges
	if c.Roles.dataPlane() && len(c.Interfaces) > 0 {
		// CAP_BPF loads the programs and maps; CAP_PERFMON lets the
		// verifier accept the steering program's pointer arithmetic.
		bpf := Caps(CapBPF, CapPerfmon)
		if lastCap < int(CapBPF) {
			bpf = Caps(CapSysAdmin)
		}
		// CAP_NET_RAW: AF_XDP sockets, the raw sockets that pass packets to
		// the kernel, IGMP/MLD packet sockets. CAP_IPC_LOCK: the UMEM is
		// locked memory beyond RLIMIT_MEMLOCK.
		p.StartUp = Caps(CapNetAdmin, CapNetRaw, CapIPCLock) | bpf
		p.Running = Caps(CapNetAdmin)
		if c.Multicast.Enabled && c.Multicast.Receivers {
			// The control-plane engine opens the IGMP/MLD packet sockets
			// on its own goroutine, after Start has returned.
			p.Running |= Caps(CapNetRaw)
		}
	}
	if c.Roles.ALT {
		// The ALT's GRE (docs/alt.md): a TUN with its addresses
		// (CAP_NET_ADMIN), a raw socket of protocol 47 (CAP_NET_RAW); BGP
		// listens on TCP 179. All are opened during Start.
		p.StartUp |= Caps(CapNetAdmin, CapNetRaw, CapNetBindService)
		p.Devices = append(p.Devices, DevNetTUN)
	}
	if c.Discovery.BGP != nil && len(c.Discovery.BGP.Listen) > 0 {
		// The discovery speaker accepts sessions on TCP 179.
		p.StartUp |= Caps(CapNetBindService)
	}
	for _, ap := range c.Control.Listen {
		if ap.Port() != 0 && ap.Port() < 1024 {
			p.StartUp |= Caps(CapNetBindService)
		}
	}
	for _, l := range []string{c.Metrics.Listen, c.Status.Listen} {
		if _, port, err := net.SplitHostPort(l); err == nil {
			if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 1024 {
				p.StartUp |= Caps(CapNetBindService)
			}
		}
	}
	return p
}

// LastCap reads the kernel's highest capability number.
func LastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// ErrThreadsUnreachable is returned by KeepCapabilities in a program
// linked with cgo, whose C threads Go cannot reach: build it with
// CGO_ENABLED=0.
var ErrThreadsUnreachable = errors.New("capabilities are per thread and this program links cgo, whose threads Go cannot change (build it with CGO_ENABLED=0)")

// KeepCapabilities reduces the capabilities of every thread of the
// process to keep (of those it has): the effective and permitted sets
// become keep, the inheritable and ambient sets empty, and the bounding
// set, when the process may change it (CAP_SETPCAP), keep too, so that
// nothing the process runs regains more. It changes the whole process:
// call it from a program's main, never from a library.
func KeepCapabilities(keep CapSet) error {
	eff, have := capget()
	if eff.Has(CapSetPCap) {
		for c := range Capability(64) {
			if keep.Has(c) || !boundingHas(c) {
				continue
			}
			if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
				return fmt.Errorf("drop %v from the bounding set: %w", c, err)
			}
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	keep &= have
	for i := range data {
		data[i].Effective = uint32(keep >> (32 * i))
		data[i].Permitted = uint32(keep >> (32 * i))
	}
	if err := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// allThreads runs a system call on every thread of the process.
func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall6(trap, a1, a2, a3, 0, 0, 0)
	switch errno {
	case 0:
		return nil
	case syscall.ENOTSUP:
		return ErrThreadsUnreachable
	}
	return errno
}

// capget returns the calling thread's capability sets.
func capget() (eff, perm CapSet) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return 0, 0
	}
	for i := range data {
		eff |= CapSet(data[i].Effective) << (32 * i)
		perm |= CapSet(data[i].Permitted) << (32 * i)
	}
	return eff, perm
}

// CurrentCaps returns the calling thread's effective and permitted
// capabilities.
func CurrentCaps() (eff, perm CapSet) { return capget() }

// boundingHas reports whether c is in the bounding set.
func boundingHas(c Capability) bool {
	r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
	return err == nil && r == 1
}
