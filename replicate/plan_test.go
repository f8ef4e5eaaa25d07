package replicate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/wire"
)

var (
	self4 = netip.MustParseAddr("192.0.2.1")
	self6 = netip.MustParseAddr("2001:db8::1")
)

func testTemplates() TemplateFunc {
	return templates(wire.Outer{LISP: wire.HeaderFields{Flags: wire.FlagN | wire.FlagI, InstanceID: 7}}, self4, self6)
}

// templates returns a TemplateFunc that builds templates with
// wire.AppendOuter from base, with the source RLOC of the destination's
// family (src4 or src6; an invalid one means none) and the destination
// filled in (the fast path builds them with fastpath.OuterConfig).
func templates(base wire.Outer, src4, src6 netip.Addr) TemplateFunc {
	return func(dst netip.Addr) []byte {
		o := base
		o.Dst = dst
		if dst.Unmap().Is4() {
			o.Src = src4
		} else {
			o.Src = src6
		}
		if !o.Src.IsValid() {
			return nil
		}
		b, err := wire.AppendOuter(make([]byte, 0, wire.OuterIPv6Len), &o)
		if err != nil {
			return nil
		}
		return b
	}
}

func node(level uint8, addr string) wire.RLENode {
	return wire.RLENode{Level: level, Address: wire.IPAddress(netip.MustParseAddr(addr))}
}

func dsts(p *Plan) string {
	var s []string
	for _, c := range p.Copies() {
		s = append(s, fmt.Sprintf("%d:%s", c.Level, c.Dst))
	}
	return strings.Join(s, " ")
}

// tree RLE: ITR's level-0 RTRs, level-1 RTRs and ETRs at 128.
func treeRLE() []wire.RLENode {
	return []wire.RLENode{
		node(128, "198.51.100.1"), node(0, "203.0.113.1"), node(1, "203.0.113.11"),
		node(128, "198.51.100.2"), node(0, "203.0.113.2"), node(1, "203.0.113.12"),
		node(128, "2001:db8:e::3"),
	}
}

func TestPlanRoles(t *testing.T) {
	tpl := testTemplates()
	cases := []struct {
		name   string
		nodes  []wire.RLENode
		cfg    PlanConfig
		want   string
		target int
	}{
		{"itr lowest level", treeRLE(), PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}},
			"0:203.0.113.1 0:203.0.113.2", 0},
		{"rtr level 0 -> 1", append(treeRLE(), node(0, "192.0.2.1")),
			PlanConfig{Role: RoleRTR, Level: LevelFromRLE, Self: []netip.Addr{self4}},
			"1:203.0.113.11 1:203.0.113.12", 1},
		{"rtr level 1 -> 128", append(treeRLE(), node(1, "192.0.2.1")),
			PlanConfig{Role: RoleRTR, Level: LevelFromRLE, Self: []netip.Addr{self4}},
			"128:198.51.100.1 128:198.51.100.2 128:2001:db8:e::3", 128},
		{"rtr configured level, not listed", treeRLE(),
			PlanConfig{Role: RoleRTR, Level: 0, Self: []netip.Addr{self4}},
			"1:203.0.113.11 1:203.0.113.12", 1},
		{"rtr skips absent levels", []wire.RLENode{node(3, "192.0.2.1"), node(200, "198.51.100.9"), node(7, "198.51.100.7")},
			PlanConfig{Role: RoleRTR, Level: LevelFromRLE, Self: []netip.Addr{self4}}, "7:198.51.100.7", 7},
		{"leaf rtr: no copies", []wire.RLENode{node(0, "203.0.113.1"), node(128, "192.0.2.1")},
			PlanConfig{Role: RoleRTR, Level: LevelFromRLE, Self: []netip.Addr{self4}}, "", -1},
		{"head-end, itr also a receiver", []wire.RLENode{node(128, "198.51.100.1"), node(128, "192.0.2.1"), node(128, "198.51.100.2")},
			PlanConfig{Role: RoleITR, Self: []netip.Addr{self4, self6}}, "128:198.51.100.1 128:198.51.100.2", 128},
		{"self at a lower level than the rest is left out (itr)", []wire.RLENode{node(0, "192.0.2.1"), node(128, "198.51.100.1")},
			PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}}, "128:198.51.100.1", 128},
		{"g-rloc and u-rloc at the top", []wire.RLENode{node(128, "239.1.2.3"), node(128, "198.51.100.1")},
			PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}}, "128:239.1.2.3 128:198.51.100.1", 128},
		{"ipv4-mapped entries are unmapped", []wire.RLENode{node(128, "::ffff:198.51.100.1")},
			PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}}, "128:198.51.100.1", 128},
		{"empty", nil, PlanConfig{Role: RoleITR}, "", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Template = tpl
			p, err := NewPlan(c.nodes, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := dsts(p); got != c.want {
				t.Errorf("copies %q, want %q", got, c.want)
			}
			if p.TargetLevel() != c.target {
				t.Errorf("target level %d, want %d", p.TargetLevel(), c.target)
			}
			for _, cp := range p.Copies() {
				if err := checkTemplate(cp.Template, cp.Dst); err != nil {
					t.Errorf("copy to %s: template %v", cp.Dst, err)
				}
				if cp.Group != cp.Dst.IsMulticast() {
					t.Errorf("copy to %s: Group %v", cp.Dst, cp.Group)
				}
			}
		})
	}
}

func TestPlanUnsendable(t *testing.T) {
	// An IPv4-only router cannot send to an IPv6 ETR: left out and reported.
	cfg := PlanConfig{Role: RoleITR, Template: templates(wire.Outer{}, self4, netip.Addr{})}
	p, err := NewPlan([]wire.RLENode{node(128, "198.51.100.1"), node(128, "2001:db8:e::3")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 1 || len(p.Unsendable()) != 1 || p.Unsendable()[0] != netip.MustParseAddr("2001:db8:e::3") {
		t.Errorf("plan %v, unsendable %v", p, p.Unsendable())
	}
	if !strings.Contains(p.String(), "1 unsendable") {
		t.Errorf("String %q", p)
	}
	if _, err := NewPlan([]wire.RLENode{node(128, "198.51.100.1")}, PlanConfig{}); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("no template builder: %v", err)
	}
	bad := func(netip.Addr) []byte { return []byte{0x45, 0} }
	if _, err := NewPlan([]wire.RLENode{node(128, "198.51.100.1")}, PlanConfig{Template: bad}); err == nil {
		t.Errorf("a malformed template was accepted")
	}
	wrongDst := func(netip.Addr) []byte { return testTemplates()(netip.MustParseAddr("198.51.100.99")) }
	if _, err := NewPlan([]wire.RLENode{node(128, "198.51.100.1")}, PlanConfig{Template: wrongDst}); err == nil {
		t.Errorf("a template to another address was accepted")
	}
}

func TestPlanRefusals(t *testing.T) {
	tpl := testTemplates()
	rtr := PlanConfig{Role: RoleRTR, Level: LevelFromRLE, Self: []netip.Addr{self4, self6}, Template: tpl}
	itr := PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}, Template: tpl}
	big := make([]wire.RLENode, 1025)
	for i := range big {
		big[i] = wire.RLENode{Level: 128, Address: wire.IPAddress(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))}
	}
	cases := []struct {
		name  string
		nodes []wire.RLENode
		cfg   PlanConfig
		want  error
		msg   string
	}{
		{"oversize", big, itr, ErrRLETooLarge, "1025 entries, the maximum is 1024"},
		{"oversize, configured", big[:11], PlanConfig{Role: RoleITR, MaxEntries: 10, Template: tpl}, ErrRLETooLarge, "11 entries"},
		{"duplicate same level", []wire.RLENode{node(128, "198.51.100.1"), node(128, "198.51.100.2"), node(128, "198.51.100.1")},
			itr, ErrRLEDuplicate, "entry 2 (198.51.100.1, level 128) repeats entry 0"},
		{"duplicate across levels", []wire.RLENode{node(0, "203.0.113.1"), node(128, "203.0.113.1")},
			itr, ErrRLEDuplicate, "repeats entry 0 (level 0)"},
		{"duplicate mapped/unmapped", []wire.RLENode{node(128, "198.51.100.1"), node(128, "::ffff:198.51.100.1")},
			itr, ErrRLEDuplicate, "repeats"},
		{"rtr its own child", []wire.RLENode{node(0, "192.0.2.1"), node(1, "2001:db8::1"), node(128, "198.51.100.1")},
			rtr, ErrRLELoop, "our RLOC 2001:db8::1 is entry 1 at level 1, but we replicate at level 0"},
		{"rtr configured level, listed elsewhere", []wire.RLENode{node(1, "203.0.113.1"), node(128, "192.0.2.1")},
			PlanConfig{Role: RoleRTR, Level: 1, Self: []netip.Addr{self4}, Template: tpl}, ErrRLELoop, "level 128"},
		{"rtr not listed", []wire.RLENode{node(0, "203.0.113.1")}, rtr, ErrNotInRLE, "none of"},
		{"unspecified", []wire.RLENode{node(128, "0.0.0.0")}, itr, ErrRLEAddress, "not a unicast RLOC"},
		{"loopback", []wire.RLENode{node(128, "::1")}, itr, ErrRLEAddress, "not a unicast RLOC"},
		{"link-local", []wire.RLENode{node(128, "fe80::1")}, itr, ErrRLEAddress, "not a unicast RLOC"},
		{"broadcast", []wire.RLENode{node(128, "255.255.255.255")}, itr, ErrRLEAddress, "not a unicast RLOC"},
		{"link-local group", []wire.RLENode{node(128, "224.0.0.5")}, itr, ErrRLEAddress, "link-local"},
		{"interface-local group", []wire.RLENode{node(128, "ff01::1")}, itr, ErrRLEAddress, "interface-local"},
		{"group at a router level", []wire.RLENode{node(0, "239.1.1.1"), node(128, "198.51.100.1")},
			itr, ErrRLEAddress, "underlay group below the highest level 128"},
		{"not an ip", []wire.RLENode{{Level: 128, Address: wire.NameAddress("etr-a")}}, itr, ErrRLEAddress, "not an IPv4 or IPv6 RLOC"},
		{"iid lcaf", []wire.RLENode{{Level: 128, Address: wire.IIDAddress(3, self4)}}, itr, ErrRLEAddress, "entry 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewPlan(c.nodes, c.cfg)
			if !errors.Is(err, c.want) {
				t.Fatalf("NewPlan = %v, %v; want %v", p, err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
		})
	}
}

func TestPlanThousands(t *testing.T) {
	// 4000 ETRs at 128 behind 40 level-0 RTRs (v4 and v6 mixed).
	var nodes []wire.RLENode
	for i := range 4000 {
		var a netip.Addr
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		} else {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		nodes = append(nodes, wire.RLENode{Level: 128, Address: wire.IPAddress(a)})
	}
	for i := range 40 {
		nodes = append(nodes, wire.RLENode{Level: 0, Address: wire.IPAddress(netip.AddrFrom4([4]byte{172, 16, 0, byte(i + 1)}))})
	}
	cfg := PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}, MaxEntries: 5000, Template: testTemplates()}
	p, err := NewPlan(nodes, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 40 || p.TargetLevel() != 0 {
		t.Errorf("ITR plan %v", p)
	}
	cfg.Role, cfg.Level = RoleRTR, 0
	if p, err = NewPlan(nodes, cfg); err != nil || p.Len() != 4000 {
		t.Fatalf("RTR plan %v %v", p, err)
	}
	// The default bound refuses it.
	cfg.MaxEntries = 0
	if _, err := NewPlan(nodes, cfg); !errors.Is(err, ErrRLETooLarge) {
		t.Errorf("default bound: %v", err)
	}
}

func TestPlanFromHops(t *testing.T) {
	tpl := testTemplates()
	hops := []cache.RLEHop{
		{Addr: netip.MustParseAddr("198.51.100.1"), Level: 128, Template: tpl(netip.MustParseAddr("198.51.100.1"))},
		{Addr: netip.MustParseAddr("198.51.100.2"), Level: 128}, // no template: built
		{Addr: self4, Level: 128},
	}
	p, err := NewPlanFromHops(hops, PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}, Template: tpl})
	if err != nil {
		t.Fatal(err)
	}
	if got := dsts(p); got != "128:198.51.100.1 128:198.51.100.2" {
		t.Errorf("copies %q", got)
	}
	if &p.Copies()[0].Template[0] != &hops[0].Template[0] {
		t.Errorf("the hop's template was not reused")
	}
	hops = append(hops, cache.RLEHop{Addr: netip.MustParseAddr("198.51.100.1"), Level: 0})
	if _, err := NewPlanFromHops(hops, PlanConfig{Template: tpl}); !errors.Is(err, ErrRLEDuplicate) {
		t.Errorf("duplicate hop: %v", err)
	}
}

func TestPlanString(t *testing.T) {
	p, err := NewPlan(append(treeRLE(), node(0, "192.0.2.1")), PlanConfig{Role: RoleRTR, Level: LevelFromRLE, Self: []netip.Addr{self4}, Template: testTemplates()})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.String(); s != "rtr level 0: 2 of 8 RLE entries at level 1" {
		t.Errorf("String %q", s)
	}
	if p.Role() != RoleRTR || p.Level() != 0 || RoleITR.String() != "itr" || Role(9).String() != "role-9" {
		t.Errorf("accessors")
	}
}
