package veth

import (
	"os"
	"strconv"
	"testing"
)

// trafgenCfg6 is trafgenCfg for IPv6 EIDs: one 64-byte frame (no FCS),
// Ethernet to the DUT's in0, IPv6 2001:db8:1::10 -> 2001:db8:2::10, UDP
// 1000 -> 2000 with its checksum, 2 bytes of payload.
const trafgenCfg6 = `{
  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x86dd),
  0x60, 0x00, 0x00, 0x00, c16(10), 17, 64,
  0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10,
  0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10,
  c16(1000), c16(2000), c16(10), csumudp6(14, 54),
  fill(0x61, 2)
}
`

// BenchmarkVethEID6 is BenchmarkVeth for IPv6 EIDs over the IPv4 RLOC:
// the kernel encapsulating into VXLAN (IPv6 routed into vx0), rloc as the
// ITR, and rloc with the kernel offload (offload_v6: the site program
// encapsulates the flow itself after its first packet).
func BenchmarkVethEID6(b *testing.B) {
	v := newBench(b)
	if err := os.WriteFile(v.cfg, []byte(trafgenCfg6), 0o644); err != nil {
		b.Fatal(err)
	}
	v.run(b, "dut", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	v.run(b, "dut", "ip", "link", "add", "vx0", "type", "vxlan", "id", strconv.Itoa(iid),
		"local", "192.0.2.1", "remote", "192.0.2.2", "dstport", "4341", "dev", "out0")
	v.run(b, "dut", "ip", "link", "set", "vx0", "up")
	v.run(b, "dut", "ip", "-6", "neigh", "replace", "2001:db8:99::2", "lladdr", "02:00:00:00:09:09", "dev", "vx0", "nud", "permanent")
	for _, load := range loads {
		v.rate = load.rate
		b.Run(load.name+"/kernel-vxlan", func(b *testing.B) {
			v.run(b, "dut", "ip", "-6", "route", "replace", "2001:db8:2::/64", "via", "2001:db8:99::2", "dev", "vx0", "onlink")
			defer v.run(b, "dut", "ip", "-6", "route", "del", "2001:db8:2::/64")
			for i := 0; i < b.N; i++ {
				r := v.generate(b, nil)
				r.dutCPU = r.soft0 + r.soft1
				report(b, load.name+"/kernel-vxlan", r)
			}
		})
		for _, variant := range []string{"rloc-itr", "rloc-itr-offload"} {
			v.rlocVariant(b, load.name, variant)
		}
	}
}
