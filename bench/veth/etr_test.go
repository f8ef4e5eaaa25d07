package veth

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/internal/testkit/xdptest"
	"github.com/rloc-router/rloc/ring/xsk"
)

// lispCfg is one 100-byte frame (no FCS) for the ETR: Ethernet to the DUT's
// in0, IPv4 10.1.0.10 -> 10.1.0.1 (the DUT's RLOC), UDP 50000 -> 4341 with a
// zero checksum, a LISP header with the I flag and instance-ID 7777 (RFC
// 9300 §5.3), and the ITR benchmark's 50-byte packet, but to the sink
// (192.0.2.2, behind out0).
const lispCfg = lispFront + `
  0x45, 0x00, c16(50), c16(0), 0x40, 0x00, 64, 17, csumip(50, 69),
  10, 2, 0, 10,
  192, 0, 2, 2,
  c16(1000), c16(2000), c16(30), c16(0),
  fill(0x61, 22)
}
`

// lispFront is the start of a trafgen frame of lispCfg's size: Ethernet,
// outer IPv4, UDP and the LISP header (lispHeader) before a 50-byte inner
// packet.
const lispFront = `{
  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x0800),
  0x45, 0x00, c16(86), c16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  10, 1, 0, 10,
  10, 1, 0, 1,
  c16(50000), c16(4341), c16(66), c16(0),
  ` + lispHeader

// lispHeader is lispCfg's LISP header line; gpeHeader is the same as
// VXLAN-GPE (RFC 9526 §3 draft format, as Linux's vxlan gpe reads it): flags
// I and P, next protocol IPv4 (1; gpeHeader6: IPv6, 2), VNI 7777. Linux
// decapsulates VXLAN with an IP payload only in this form.
const (
	lispHeader = "0x08, 0x00, 0x00, 0x00, 0x00, 0x1e, 0x61, 0x00,"
	gpeHeader  = "0x0c, 0x00, 0x00, 0x01, 0x00, 0x1e, 0x61, 0x00,"
	gpeHeader6 = "0x0c, 0x00, 0x00, 0x02, 0x00, 0x1e, 0x61, 0x00," // next protocol IPv6
)

// BenchmarkVethETR is BenchmarkVeth for the ETR: the generator sends
// encapsulated 100-byte frames to the DUT's in0 (its core side, RLOC
// 10.1.0.1), and the DUT delivers the 50-byte inner packets to the sink on
// out0 (its site side). The kernel variant decapsulates VXLAN-GPE (Linux's
// vxlan reads no LISP header; GPE's is the same size) and routes the inner
// packet; rloc-etr is rloc's worker, rloc-etr-offload rloc with the decap
// offload (XTRConfig.Decap: the core program delivers the flow itself).
func BenchmarkVethETR(b *testing.B) {
	lispBench(b, lispRun{role: "etr", frames: lispCfg, gpe: gpeHeader})
}

// BenchmarkVethRTR is BenchmarkVethETR for an RTR: the same frames but to
// 10.9.0.10, an EID of instance-ID 7777 whose RLOC is the sink (192.0.2.2,
// behind out0), so the DUT decapsulates, looks it up and encapsulates again
// towards the sink. The kernel variant does it with one VXLAN-GPE device in
// and out (a route to the EID with `encap ip id 7777 dst 192.0.2.2`);
// rloc-rtr is rloc's worker as an RTR, rloc-rtr-offload rloc with the
// offload (XTRConfig.RTR and Offload: in0's program re-encapsulates the flow
// itself and redirects it to out0).
func BenchmarkVethRTR(b *testing.B) {
	lispBench(b, lispRun{role: "rtr", frames: strings.Replace(lispCfg, "  192, 0, 2, 2,\n", "  10, 9, 0, 10,\n", 1), gpe: gpeHeader,
		eids: netip.MustParsePrefix("10.9.0.0/24")})
}

// lispFront6 is lispFront over IPv6: Ethernet to the DUT's in0, IPv6
// 2001:db8:1::10 -> 2001:db8:1::1 (the DUT's IPv6 RLOC), UDP 50000 -> 4341
// with a zero checksum (RFC 6935, as LISP's encapsulators send it) and the
// LISP header, before a 50-byte inner packet: 120 bytes in all.
const lispFront6 = `{
  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x86dd),
  0x60, 0x00, 0x00, 0x00, c16(66), 17, 64,
  0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10,
  0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
  c16(50000), c16(4341), c16(66), c16(0),
  ` + lispHeader

// BenchmarkVethRTR6 is BenchmarkVethRTR over an IPv6 underlay: the
// generator's LISP frames come over IPv6 to the DUT's 2001:db8:1::1, and
// the EID's RLOC is the sink's 2001:db8:ff::2, so the DUT re-encapsulates
// over IPv6 (the offload's reencap entry for the outer version IPv6). The
// kernel variant's VXLAN-GPE device takes and sends zero UDP checksums
// over IPv6, as rloc does.
func BenchmarkVethRTR6(b *testing.B) {
	lispBench(b, lispRun{role: "rtr", over6: true, gpe: gpeHeader, eids: netip.MustParsePrefix("10.9.0.0/24"),
		frames: strings.NewReplacer(lispFront, lispFront6, "csumip(50, 69)", "csumip(70, 89)", // the inner header starts 20 bytes later
			"  192, 0, 2, 2,\n", "  10, 9, 0, 10,\n").Replace(lispCfg)})
}

// rtrEID6Cfg is lispCfg carrying trafgenCfg6's 50-byte IPv6 packet (UDP
// 1000 -> 2000, 2 bytes of payload) from 2001:db8:1::10 to 2001:db8:9::10,
// an IPv6 EID of instance-ID 7777.
const rtrEID6Cfg = lispFront + `
  0x60, 0x00, 0x00, 0x00, c16(10), 17, 64,
  0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10,
  0x20, 0x01, 0x0d, 0xb8, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10,
  c16(1000), c16(2000), c16(10), csumudp6(50, 90),
  fill(0x61, 2)
}
`

// BenchmarkVethRTREID6 is BenchmarkVethRTR for an IPv6 EID (2001:db8:9::10)
// over the IPv4 RLOCs: the offload's reencap6 path.
func BenchmarkVethRTREID6(b *testing.B) {
	lispBench(b, lispRun{role: "rtr", frames: rtrEID6Cfg, gpe: gpeHeader6, eids: netip.MustParsePrefix("2001:db8:9::/48")})
}

// lispRun is what lispBench runs: role "etr" (BenchmarkVethETR) or "rtr"
// (BenchmarkVethRTR, BenchmarkVethRTREID6), the generator's LISP frames,
// the VXLAN-GPE header that takes the place of their LISP header for the
// kernel, and for an RTR the EIDs it re-encapsulates to the sink.
type lispRun struct {
	role, frames, gpe string
	eids              netip.Prefix
	over6             bool // the underlay is IPv6 (BenchmarkVethRTR6)
}

// lispBench runs lr: the kernel's VXLAN-GPE (for an RTR, with a route to
// the EIDs that encapsulates them again towards the sink), then rloc's
// worker and rloc with the offload, at each load.
func lispBench(b *testing.B, lr lispRun) {
	v := newBench(b)
	role := lr.role
	gpeFrames := strings.Replace(lr.frames, lispHeader, lr.gpe, 1)
	if !strings.Contains(lr.frames, lispHeader) || gpeFrames == lr.frames || role == "rtr" && (lr.frames == lispCfg || !lr.eids.IsValid()) {
		b.Fatal("the frames lost their LISP header line or inner destination")
	}
	lispFrames := lr.frames
	if lr.eids.Addr().Is6() || lr.over6 {
		v.run(b, "dut", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	}
	sink := netip.MustParseAddr("192.0.2.2")
	vxlan := []string{"ip", "link", "add", "vxg0", "type", "vxlan", "external", "gpe", "dstport", "4341"}
	if lr.over6 {
		sink = netip.MustParseAddr("2001:db8:ff::2")
		for _, a := range []struct{ node, ifname, addr string }{{"gen", "eth0", "2001:db8:1::10/64"}, {"dut", "in0", "2001:db8:1::1/64"},
			{"dut", "out0", "2001:db8:ff::1/64"}, {"sink", "eth0", "2001:db8:ff::2/64"}} {
			v.run(b, a.node, "ip", "addr", "add", a.addr, "dev", a.ifname, "nodad")
		}
		v.run(b, "dut", "ip", "neigh", "replace", sink.String(), "lladdr", "02:00:00:00:02:02", "dev", "out0", "nud", "permanent")
		vxlan = append(vxlan, "udp6zerocsumrx", "udp6zerocsumtx")
	}
	lisp, gpe := v.cfg, v.cfg+".gpe"
	for f, c := range map[string]string{lisp: lispFrames, gpe: gpeFrames} {
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	v.run(b, "dut", vxlan...)
	for _, load := range loads {
		v.rate = load.rate
		b.Run(load.name+"/kernel-vxlan-gpe", func(b *testing.B) {
			v.cfg = gpe
			v.run(b, "dut", "ip", "link", "set", "vxg0", "up")
			defer v.run(b, "dut", "ip", "link", "set", "vxg0", "down") // frees UDP 4341 for rloc's variants
			if role == "rtr" {
				v.run(b, "dut", "ip", map[bool]string{false: "-4", true: "-6"}[lr.eids.Addr().Is6()], "route", "replace", lr.eids.String(),
					"encap", map[bool]string{false: "ip", true: "ip6"}[lr.over6], "id", strconv.Itoa(iid), "dst", sink.String(), "dev", "vxg0")
			}
			for i := 0; i < b.N; i++ {
				r := v.generate(b, nil)
				r.dutCPU = r.soft0 + r.soft1
				report(b, load.name+"/kernel-vxlan-gpe", r)
			}
		})
		for _, variant := range []string{"rloc-" + role, "rloc-" + role + "-offload"} {
			b.Run(load.name+"/"+variant, func(b *testing.B) {
				v.cfg = lisp
				offload := strings.HasSuffix(variant, "-offload")
				xc := xdptest.XTRConfig{
					NS: v.l.Node("dut"), Site: "out0", Core: "in0", IID: iid,
					SiteAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
					RLOC4:     netip.MustParseAddr("10.1.0.1"),
					XDPMode:   xsk.XDPDriver,
					Options:   v.xsk,
					Offload:   offload,
					Decap:     offload && role == "etr",
					IdleSpins: v.spins,
					Pin:       true,
					CPU:       dutCPU,
				}
				if lr.over6 {
					xc.RLOC6 = netip.MustParseAddr("2001:db8:1::1")
				}
				if role == "rtr" {
					xc.RTR, xc.IID = true, 0 // no site port serves instance-ID 7777
					xc.Mappings = []fastpath.StaticMapping{{IID: iid, Prefix: lr.eids,
						RLOCs: []fastpath.StaticRLOC{{Addr: sink}}}}
				}
				x, err := xdptest.StartXTR(xc)
				need(b, err == nil, "rloc xTR on AF_XDP: %v", err)
				defer func() {
					if err := x.Close(); err != nil {
						b.Errorf("close: %v", err)
					}
					logSockets(b, x)
				}()
				if err := x.SetNice(v.nice); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < b.N; i++ {
					r := v.generate(b, x)
					// As for the ITR: the worker's thread and softirq on
					// the generator's CPU; with the offload the kernel's
					// work and redirect run in softirq on both.
					r.dutCPU = r.worker + r.soft0
					if offload {
						r.dutCPU += r.soft1
					}
					report(b, load.name+"/"+variant, r)
					var c fastpath.Counters
					x.Worker().Counters().Snapshot(&c)
					_, core, _ := x.ProgramStats()
					ss, cs, _ := x.SocketStats()
					b.Logf("rloc worker (cumulative): rx %d decap %d reencap %d tx %d dropped %d; core program redirected %d, "+
						"offloaded %d; core socket %+v; out0 socket %+v",
						c.Get(fastpath.CounterRX), c.Get(fastpath.CounterDecap), c.Get(fastpath.CounterReencap), c.Get(fastpath.CounterTX),
						c.DroppedTotal(), core[xsk.StatRedirect], core[xsk.StatOffload], cs, ss)
					logEpochs(b, x)
				}
			})
		}
	}
}
