package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// statePrefixes is how many /32s the load registers.
const statePrefixes = 400

// stateEID is the i-th registered EID.
func stateEID(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 50, byte(i >> 8), byte(i)}) }

// stateMSYAML is a Map-Server keeping its registrations in file, its rate
// limit off (the load comes from one source).
func stateMSYAML(file string) string {
	return fmt.Sprintf(`name: msmr
roles: [map-server, map-resolver]
control: {rate_limit: {off: true}}
sites:
  - name: load
    keys: [{id: 1, secret: key-load}]
    prefixes: [{eid: 10.50.0.0/16, accept_more_specifics: true}]
map_server: {registration_timeout: 10m, state_file: %q}
`, file)
}

// stateRegister is a Map-Register of EID i from 192.0.2.1 with nonce n.
func stateRegister(t *testing.T, i int, n uint64) []byte {
	reg := wire.MapRegister{ProxyReply: true, WantMapNotify: true, Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
		XTRIDPresent: true, XTRID: wire.XTRID{0x50, 1}, Records: []wire.Record{{TTL: 10, MaskLen: 32, EID: wire.IPAddress(stateEID(i)),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
	binary.BigEndian.PutUint64(reg.Nonce[:], n)
	b, err := reg.AppendSigned(nil, []byte("key-load"))
	if err != nil {
		t.Error(err)
	}
	return b
}

// TestMapServerStateKill (issue 13, problem 8): a Map-Server killed
// (SIGKILL) under register load and started again answers for every
// registered prefix on the first request, before any ETR registers again:
// from its state file.
func TestMapServerStateKill(t *testing.T) {
	n := newNetwork(t)
	state := filepath.Join(n.dir, "registrations.db")
	n.start("msmr", stateMSYAML(state))
	ms := netip.MustParseAddrPort("192.0.2.100:4342")

	// The load: rounds of registers of every prefix from xtr1's namespace
	// (no rlocd there), until stopped; bounded in rounds.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rounds int
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := n.lab.Node("xtr1").Do(func() error {
			c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:0")), net.UDPAddrFromAddrPort(ms))
			if err != nil {
				return err
			}
			defer c.Close()
			nonce := uint64(1)
			for rounds = 0; rounds < 200; rounds++ {
				for i := range statePrefixes {
					nonce++
					_, _ = c.Write(stateRegister(t, i, nonce)) // refused while the Map-Server is down
				}
				select {
				case <-stop:
					return nil
				case <-time.After(50 * time.Millisecond): // pacing between rounds
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}()
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	n.waitFor(20*time.Second, "every prefix registered", func() bool {
		return n.stats("msmr").Control["registrations"] == statePrefixes
	})
	// Two transactions after that: the second began after every prefix
	// was registered.
	base := n.stats("msmr").Control["state_flushes"]
	n.waitFor(10*time.Second, "the state file written", func() bool {
		return n.stats("msmr").Control["state_flushes"] >= base+2
	})
	n.stop("msmr", false) // SIGKILL, the load still running
	stopLoad()
	t.Logf("killed after %d rounds of %d registers", rounds, statePrefixes)

	n.start("msmr", stateMSYAML(state))
	if got := len(n.registrations()); got != statePrefixes {
		t.Fatalf("%d registrations after the restart, want %d", got, statePrefixes)
	}
	// One Map-Request per prefix, from a resolver in xtr1's namespace;
	// every one answered with the registered RLOC.
	err := n.lab.Node("xtr1").Do(func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:0")))
		if err != nil {
			return err
		}
		defer c.Close()
		// One at a time, each read before the next is sent: a burst of
		// 400 replies would overflow this socket's receive buffer.
		buf := make([]byte, 2048)
		for i := range statePrefixes {
			req := wire.MapRequest{ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr("192.0.2.1"))},
				Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(stateEID(i))}}}
			binary.BigEndian.PutUint64(req.Nonce[:], uint64(i+1))
			b, err := req.Append(nil)
			if err != nil {
				return err
			}
			if _, err := c.WriteToUDPAddrPort(b, ms); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return fmt.Errorf("request %d of %d not answered: %w", i+1, statePrefixes, err)
			}
			var rep wire.MapReply
			if err := rep.Parse(buf[:k]); err != nil {
				return fmt.Errorf("request %d: %w", i+1, err)
			}
			if binary.BigEndian.Uint64(rep.Nonce[:]) != uint64(i+1) || len(rep.Records) != 1 ||
				len(rep.Records[0].Locators) != 1 || rep.Records[0].EID.IP != stateEID(i) {
				return fmt.Errorf("request %d: answered %x %+v", i+1, rep.Nonce, rep.Records)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := n.stats("msmr")
	if got := msgCount(st, "map-register").Received; got != 0 {
		t.Fatalf("%d Map-Registers reached the restarted Map-Server: the answers did not come from the state file alone", got)
	}
}
