package router

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

func TestPrivileges(t *testing.T) {
	xtr := Config{Roles: Roles{ITR: true, ETR: true}, Interfaces: []Interface{{Name: "s", Side: SideSite}, {Name: "c", Side: SideCore}}}
	receivers := xtr
	receivers.Multicast = MulticastOptions{Enabled: true, Receivers: true}
	ms := Config{Roles: Roles{MapServer: true, MapResolver: true}}
	low := ms
	low.Control.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:434")}
	metrics := ms
	metrics.Metrics.Listen = ":80"
	highMetrics := ms
	highMetrics.Metrics.Listen = "127.0.0.1:9100"
	status := ms
	status.Status.Listen = "127.0.0.1:443"
	alt := ms
	alt.Roles.ALT = true
	bgpListen := ms
	bgpListen.Discovery.BGP = &slowpath.DiscoveryBGP{ASN: 65001, Listen: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	bgpOut := ms
	bgpOut.Discovery.BGP = &slowpath.DiscoveryBGP{ASN: 65001}
	for _, tc := range []struct {
		name             string
		cfg              Config
		lastCap          int
		startUp, running string
		devices          string
	}{
		{"xtr", xtr, 40, "cap_net_admin,cap_net_raw,cap_ipc_lock,cap_perfmon,cap_bpf", "cap_net_admin", ""},
		{"xtr before CAP_BPF", xtr, 37, "cap_net_admin,cap_net_raw,cap_ipc_lock,cap_sys_admin", "cap_net_admin", ""},
		{"xtr with multicast receivers", receivers, 40, "cap_net_admin,cap_net_raw,cap_ipc_lock,cap_perfmon,cap_bpf", "cap_net_admin,cap_net_raw", ""},
		{"map-server", ms, 40, "", "", ""},
		{"map-server on a low port", low, 40, "cap_net_bind_service", "", ""},
		{"metrics on a low port", metrics, 40, "cap_net_bind_service", "", ""},
		{"metrics on a high port", highMetrics, 40, "", "", ""},
		{"status page on a low port", status, 40, "cap_net_bind_service", "", ""},
		{"alt", alt, 40, "cap_net_bind_service,cap_net_admin,cap_net_raw", "", DevNetTUN},
		{"bgp discovery listener", bgpListen, 40, "cap_net_bind_service", "", ""},
		{"bgp discovery connecting out only", bgpOut, 40, "", "", ""},
	} {
		p := tc.cfg.Privileges(tc.lastCap)
		if p.StartUp.String() != tc.startUp || p.Running.String() != tc.running {
			t.Errorf("%s: start-up %q running %q, want %q and %q", tc.name, p.StartUp, p.Running, tc.startUp, tc.running)
		}
		if d := strings.Join(p.Devices, ","); d != tc.devices {
			t.Errorf("%s: devices %q, want %q", tc.name, d, tc.devices)
		}
		if p.Running&^p.StartUp != 0 {
			t.Errorf("%s: running needs %q beyond start-up", tc.name, p.Running&^p.StartUp)
		}
	}
}

// keepChildEnv makes the test binary a child that calls KeepCapabilities
// and prints its capability sets.
const keepChildEnv = "ROUTER_TEST_KEEP_CAPS"

// TestKeepCapabilities runs KeepCapabilities(cap_net_admin) in a child
// process (it changes the whole process) and reads the child's sets: with
// cgo linked it must refuse with ErrThreadsUnreachable and change nothing;
// without, every set is reduced to cap_net_admin (of what the child had).
func TestKeepCapabilities(t *testing.T) {
	if os.Getenv(keepChildEnv) != "" {
		err := KeepCapabilities(Caps(CapNetAdmin))
		b, _ := os.ReadFile("/proc/self/status")
		fmt.Printf("err=%v\n%s", err, b)
		os.Exit(0)
	}
	c := exec.Command(os.Args[0], "-test.run=^TestKeepCapabilities$")
	c.Env = append(os.Environ(), keepChildEnv+"=1")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	sets := map[string]CapSet{}
	var childErr string
	for _, line := range strings.Split(string(out), "\n") {
		if e, ok := strings.CutPrefix(line, "err="); ok {
			childErr = e
		}
		k, v, _ := strings.Cut(line, ":")
		if strings.HasPrefix(k, "Cap") {
			x, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			sets[k] = CapSet(x)
		}
	}
	eff, perm := CurrentCaps()
	switch {
	case strings.HasSuffix(childErr, ErrThreadsUnreachable.Error()):
		if sets["CapEff"] != eff || sets["CapPrm"] != perm {
			t.Fatalf("refused, yet the child's sets changed: %v, parent eff %q", sets, eff)
		}
		t.Log("cgo is linked: KeepCapabilities refused, as it must")
	case childErr == "<nil>":
		want := Caps(CapNetAdmin) & perm
		if sets["CapEff"] != want || sets["CapPrm"] != want || sets["CapInh"] != 0 || sets["CapAmb"] != 0 {
			t.Fatalf("child sets %v, want eff = prm = %q, inh = amb = 0", sets, want)
		}
		if eff.Has(CapSetPCap) && sets["CapBnd"] != Caps(CapNetAdmin) {
			t.Fatalf("bounding set %q, want cap_net_admin", sets["CapBnd"])
		}
	default:
		t.Fatalf("child: %s\n%s", childErr, out)
	}
}
