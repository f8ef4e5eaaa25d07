package veth

import (
	"net/netip"
	"os"
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
const lispCfg = `{
  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x0800),
  0x45, 0x00, c16(86), c16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  10, 1, 0, 10,
  10, 1, 0, 1,
  c16(50000), c16(4341), c16(66), c16(0),
  0x08, 0x00, 0x00, 0x00, 0x00, 0x1e, 0x61, 0x00,
  0x45, 0x00, c16(50), c16(0), 0x40, 0x00, 64, 17, csumip(50, 69),
  10, 2, 0, 10,
  192, 0, 2, 2,
  c16(1000), c16(2000), c16(30), c16(0),
  fill(0x61, 22)
}
`

// gpeCfg is lispCfg as a VXLAN-GPE frame (RFC 9526 §3 draft format, as
// Linux's vxlan gpe reads it): the same bytes but for the 8-byte header,
// flags I and P, next protocol IPv4 (1), VNI 7777. Linux decapsulates VXLAN
// with an IP payload only in this form.
var gpeCfg = strings.Replace(lispCfg, lispHeader, "0x0c, 0x00, 0x00, 0x01, 0x00, 0x1e, 0x61, 0x00,", 1)

// lispHeader is lispCfg's LISP header line.
const lispHeader = "0x08, 0x00, 0x00, 0x00, 0x00, 0x1e, 0x61, 0x00,"

// BenchmarkVethETR is BenchmarkVeth for the ETR: the generator sends
// encapsulated 100-byte frames to the DUT's in0 (its core side, RLOC
// 10.1.0.1), and the DUT delivers the 50-byte inner packets to the sink on
// out0 (its site side). The kernel variant decapsulates VXLAN-GPE (Linux's
// vxlan reads no LISP header; GPE's is the same size) and routes the inner
// packet; rloc-etr is rloc's worker, rloc-etr-offload rloc with the decap
// offload (XTRConfig.Decap: the core program delivers the flow itself).
func BenchmarkVethETR(b *testing.B) {
	v := newBench(b)
	if !strings.Contains(lispCfg, lispHeader) || gpeCfg == lispCfg {
		b.Fatal("lispCfg lost its LISP header line")
	}
	lisp, gpe := v.cfg, v.cfg+".gpe"
	for f, c := range map[string]string{lisp: lispCfg, gpe: gpeCfg} {
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	v.run(b, "dut", "ip", "link", "add", "vxg0", "type", "vxlan", "external", "gpe", "dstport", "4341")
	for _, load := range loads {
		v.rate = load.rate
		b.Run(load.name+"/kernel-vxlan-gpe", func(b *testing.B) {
			v.cfg = gpe
			v.run(b, "dut", "ip", "link", "set", "vxg0", "up")
			defer v.run(b, "dut", "ip", "link", "set", "vxg0", "down") // frees UDP 4341 for rloc's variants
			for i := 0; i < b.N; i++ {
				r := v.generate(b, nil)
				r.dutCPU = r.soft0 + r.soft1
				report(b, load.name+"/kernel-vxlan-gpe", r)
			}
		})
		for _, variant := range []string{"rloc-etr", "rloc-etr-offload"} {
			b.Run(load.name+"/"+variant, func(b *testing.B) {
				v.cfg = lisp
				offload := variant == "rloc-etr-offload"
				x, err := xdptest.StartXTR(xdptest.XTRConfig{
					NS: v.l.Node("dut"), Site: "out0", Core: "in0", IID: iid,
					SiteAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
					RLOC4:     netip.MustParseAddr("10.1.0.1"),
					XDPMode:   xsk.XDPDriver,
					Options:   v.xsk,
					Offload:   offload,
					Decap:     offload,
					IdleSpins: v.spins,
					Pin:       true,
					CPU:       dutCPU,
				})
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
					// decapsulation and redirect run in softirq on both.
					r.dutCPU = r.worker + r.soft0
					if offload {
						r.dutCPU += r.soft1
					}
					report(b, load.name+"/"+variant, r)
					var c fastpath.Counters
					x.Worker().Counters().Snapshot(&c)
					_, core, _ := x.ProgramStats()
					ss, cs, _ := x.SocketStats()
					b.Logf("rloc worker (cumulative): rx %d decap %d tx %d dropped %d; core program redirected %d, delivered itself %d; "+
						"core socket %+v; site socket %+v",
						c.Get(fastpath.CounterRX), c.Get(fastpath.CounterDecap), c.Get(fastpath.CounterTX), c.DroppedTotal(),
						core[xsk.StatRedirect], core[xsk.StatOffload], cs, ss)
				}
			})
		}
	}
}
