package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// bulkMappings is how many mappings TestMSXBulkNamespaces transfers.
const bulkMappings = 100_000

// bulkEID and bulkRLOC are the i-th mapping of the transferred table:
// a /32 and an RLOC that both encode i, so every answer can be checked.
func bulkEID(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(128 + i>>16), byte(i >> 8), byte(i)})
}

func bulkRLOC(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, byte(18 + i>>16), byte(i >> 8), byte(i)})
}

// bulkMSYAML is a Map-Server/Map-Resolver with its rate limit off (the
// load and the checks come from one source each), sites as given, and an
// interconnect agreement in copy mode with peer.
func bulkMSYAML(name, sites, limits, peer string) string {
	return fmt.Sprintf(`name: %s
roles: [map-server, map-resolver]
control: {rate_limit: {off: true}}
sites:
%s
map_server: {registration_timeout: 10m%s}
`, name, sites, limits) + msxCopyYAML(peer, "30s")
}

// TestMSXBulkNamespaces: a table of 100,000 mappings crosses between two
// real rlocd mapping systems in namespaces. msmr2's site registers them
// (Map-Registers of 40 records from xtr2's namespace, no rlocd there);
// msmr1 starts with an interconnect agreement in copy mode and pulls the
// whole table by Map-Bulk-Request pages. Its copy holds exactly 100,000
// mappings, and every one of them is checked: an ECM Map-Request for each
// EID, sent to msmr1 from xtr1's namespace, is answered from the copy
// with the RLOC the site registered for it.
func TestMSXBulkNamespaces(t *testing.T) {
	n := newLabNetwork(t, "../configs/lab/msx.yaml", "msx")
	n.start("msmr2", bulkMSYAML("msmr2", `  - name: load
    keys: [{id: 1, secret: key-load}]
    prefixes: [{eid: 10.128.0.0/9, accept_more_specifics: true}]`, ", limits: {prefixes_per_site: 100000}", "192.0.2.100"))

	// The registrations, in batches of 100 messages, each batch waited
	// for (the Map-Server's socket would drop a burst of 2500).
	const perRegister, perBatch = 40, 100
	ms2 := netip.MustParseAddrPort("192.0.2.101:4342")
	err := n.lab.Node("xtr2").Do(func() error {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.2:0")), net.UDPAddrFromAddrPort(ms2))
		if err != nil {
			return err
		}
		defer c.Close()
		sent := 0
		for first := 0; first < bulkMappings; first += perRegister {
			reg := wire.MapRegister{ProxyReply: true, Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
				XTRIDPresent: true, XTRID: wire.XTRID{0x51, 1}}
			binary.BigEndian.PutUint64(reg.Nonce[:], uint64(first+1))
			for i := first; i < min(first+perRegister, bulkMappings); i++ {
				reg.Records = append(reg.Records, wire.Record{TTL: 10, MaskLen: 32, EID: wire.IPAddress(bulkEID(i)),
					Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(bulkRLOC(i))}}})
			}
			b, err := reg.AppendSigned(nil, []byte("key-load"))
			if err != nil {
				return err
			}
			if _, err := c.Write(b); err != nil {
				return err
			}
			sent += len(reg.Records)
			if sent%(perRegister*perBatch) == 0 || sent == bulkMappings {
				want := uint64(sent)
				deadline := time.Now().Add(20 * time.Second)
				for n.stats("msmr2").Control["registrations"] < want {
					if time.Now().After(deadline) {
						return fmt.Errorf("%d of %d registrations after 20 s", n.stats("msmr2").Control["registrations"], want)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	n.start("msmr1", bulkMSYAML("msmr1", `  - name: site1
    keys: [{id: 1, secret: key-one}]
    prefixes: [{eid: 10.1.0.0/24}]`, "", "192.0.2.101"))
	n.waitFor(60*time.Second, "msmr1's copy of the 100,000 mappings", func() bool {
		a := n.msxAgreement("msmr1")
		return a.Complete && a.Copy == bulkMappings
	})
	a := n.msxAgreement("msmr1")
	t.Logf("copy complete %v after msmr1's start: %d mappings, counters %v", time.Since(start).Round(time.Millisecond), a.Copy, a.Counters)
	if a.Counters["pulls_done"] < 1 {
		t.Fatalf("msmr1's counters %v", a.Counters)
	}

	// Every mapping, asked of msmr1 (the copy answers), 64 in flight.
	ms1 := netip.MustParseAddrPort("192.0.2.100:4342")
	itr := netip.MustParseAddr("192.0.2.1")
	err = n.lab.Node("xtr1").Do(func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(itr, 0)))
		if err != nil {
			return err
		}
		defer c.Close()
		port := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		ask := func(i int) error {
			req := wire.MapRequest{ITRRLOCs: []wire.Address{wire.IPAddress(itr)},
				Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(bulkEID(i))}}}
			binary.BigEndian.PutUint64(req.Nonce[:], uint64(i+1))
			b, err := req.Append(nil)
			if err != nil {
				return err
			}
			e := wire.ECM{Src: itr, Dst: bulkEID(i), SrcPort: port, DstPort: 4342, TTL: 64, Message: b}
			if b, err = e.Append(nil); err != nil {
				return err
			}
			_, err = c.WriteToUDPAddrPort(b, ms1)
			return err
		}
		const window = 64
		next, answered := 0, make([]bool, bulkMappings)
		for ; next < window; next++ {
			if err := ask(next); err != nil {
				return err
			}
		}
		buf := make([]byte, 2048)
		for done := 0; done < bulkMappings; done++ {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return fmt.Errorf("%d of %d answered, then: %w", done, bulkMappings, err)
			}
			var rep wire.MapReply
			if err := rep.Parse(buf[:k]); err != nil {
				return fmt.Errorf("answer %d: %w", done, err)
			}
			i := int(binary.BigEndian.Uint64(rep.Nonce[:])) - 1
			if i < 0 || i >= bulkMappings || answered[i] {
				return fmt.Errorf("answer with nonce %x: not asked, or twice", rep.Nonce)
			}
			answered[i] = true
			if len(rep.Records) != 1 || rep.Records[0].MaskLen != 32 || rep.Records[0].EID.IP != bulkEID(i) ||
				len(rep.Records[0].Locators) != 1 || rep.Records[0].Locators[0].Address.IP != bulkRLOC(i) {
				return fmt.Errorf("mapping %d (%v): answered %+v, want RLOC %v", i, bulkEID(i), rep.Records, bulkRLOC(i))
			}
			if next < bulkMappings {
				if err := ask(next); err != nil {
					return err
				}
				next++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := n.msxAgreement("msmr1"); a.Counters["answered"] < bulkMappings {
		t.Fatalf("msmr1 answered %d from its copy, want %d: %v", a.Counters["answered"], bulkMappings, a.Counters)
	}
}
