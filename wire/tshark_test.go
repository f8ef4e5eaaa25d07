package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Shared test helpers: build frames with gopacket and check what tshark
// makes of them. The control-message tests of this package use them too.

var (
	testSrcMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	testDstMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

// udpFrame returns an Ethernet + IPv4/IPv6 + UDP frame from src:sport to
// dst:dport carrying payload, built with gopacket with correct lengths and
// checksums. src and dst must be of one family.
func udpFrame(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	src, dst = src.Unmap(), dst.Unmap()
	if src.Is4() != dst.Is4() {
		t.Fatalf("udpFrame: mixed families %v -> %v", src, dst)
	}
	eth := &layers.Ethernet{SrcMAC: testSrcMAC[:], DstMAC: testDstMAC[:]}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	var ip gopacket.SerializableLayer
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		if err := udp.SetNetworkLayerForChecksum(v4); err != nil {
			t.Fatal(err)
		}
		ip = v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		if err := udp.SetNetworkLayerForChecksum(v6); err != nil {
			t.Fatal(err)
		}
		ip = v6
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatalf("udpFrame: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ethFrame puts an Ethernet header in front of the IP packet pkt.
func ethFrame(pkt []byte) []byte {
	f := make([]byte, EthernetLen, EthernetLen+len(pkt))
	e := Ethernet(f)
	e.SetDst(testDstMAC)
	e.SetSrc(testSrcMAC)
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		e.SetType(EtherTypeIPv6)
	} else {
		e.SetType(EtherTypeIPv4)
	}
	return append(f, pkt...)
}

// Expert-info severities as tshark prints them in -T json output
// (epan/proto.h: PI_NOTE 0x00400000, PI_WARN 0x00600000, PI_ERROR
// 0x00800000).
const tsharkSeverityError = 0x00800000

// tsharkDecode writes frames (Ethernet) into a pcap file, decodes it with
// `tshark -r FILE -T json --no-duplicate-keys` (with IP, UDP and TCP
// checksum validation switched on) and returns each packet's
// _source.layers map. The test fails if tshark reports a malformed packet
// or an expert item of error severity. Without tshark the test fails when
// the environment variable CI is set and is skipped otherwise.
func tsharkDecode(t testing.TB, frames [][]byte) []map[string]any {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tshark not found and CI is set: %v (apt-get install tshark)", err)
		}
		t.Skipf("tshark not installed (apt-get install tshark): %v", err)
	}
	path := filepath.Join(t.TempDir(), "frames.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	// Checksum validation is off in tshark by default; turn it on so that a
	// bad checksum shows up as an error-severity expert item.
	cmd := exec.Command(bin, "-r", path, "-T", "json", "--no-duplicate-keys",
		"-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	var pkts []struct {
		Source struct {
			Layers map[string]any `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &pkts); err != nil {
		t.Fatalf("tshark json: %v\n%s", err, stdout.String())
	}
	if len(pkts) != len(frames) {
		t.Fatalf("tshark decoded %d packets, wrote %d", len(pkts), len(frames))
	}
	out := make([]map[string]any, len(pkts))
	for i, p := range pkts {
		out[i] = p.Source.Layers
		if bad := tsharkProblems(p.Source.Layers); len(bad) > 0 {
			js, _ := json.MarshalIndent(p.Source.Layers, "", " ")
			t.Errorf("tshark packet %d: %s\n%s", i+1, strings.Join(bad, "; "), js)
		}
	}
	return out
}

// tsharkProblems lists malformed markers and error-severity expert items
// anywhere in a packet's layers. One error is tolerated: tshark calls a zero
// UDP checksum over IPv6 illegal (udp.checksum.zero), but for a packet that
// carries LISP data that is what RFC 9300 §5.3 says to send, under the
// tunnel exception of RFC 6935 §5 and RFC 6936 §4.
func tsharkProblems(layers map[string]any) []string {
	_, lispData := layers["lisp-data"]
	var bad []string
	var walk func(k string, v any)
	walk = func(k string, v any) {
		if k == "_ws.malformed" {
			bad = append(bad, fmt.Sprintf("malformed: %v", v))
		}
		switch v := v.(type) {
		case map[string]any:
			_, zeroSum := v["udp.checksum.zero"]
			if sev, ok := v["_ws.expert.severity"]; ok && !(zeroSum && lispData) {
				for _, s := range tsharkStrings(sev) {
					n, err := strconv.ParseUint(s, 0, 32)
					if err != nil || n >= tsharkSeverityError {
						bad = append(bad, fmt.Sprintf("expert %v: %v", v["_ws.expert.message"], s))
					}
				}
			}
			keys := make([]string, 0, len(v))
			for kk := range v {
				keys = append(keys, kk)
			}
			sort.Strings(keys)
			for _, kk := range keys {
				walk(kk, v[kk])
			}
		case []any:
			for _, e := range v {
				walk(k, e)
			}
		}
	}
	for k, v := range layers {
		walk(k, v)
	}
	return bad
}

func tsharkStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, tsharkStrings(e)...)
		}
		return s
	}
	return nil
}

// tsharkFields returns every value of the tshark field name (for example
// "lisp-data.nonce" or "ip.src") found anywhere in layers, nested subtrees
// ("..._tree") included. Repeated layers (outer and inner "ip") come as
// one array thanks to --no-duplicate-keys and keep their order, outer
// first; otherwise keys are visited in sorted order.
func tsharkFields(layers map[string]any, name string) []string {
	var out []string
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		if v, ok := m[name]; ok {
			out = append(out, tsharkStrings(v)...)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch v := m[k].(type) {
			case map[string]any:
				walk(v)
			case []any:
				for _, e := range v {
					if mm, ok := e.(map[string]any); ok {
						walk(mm)
					}
				}
			}
		}
	}
	walk(layers)
	return out
}

// tsharkField returns the single value of the tshark field name in layers
// and fails the test when it is missing or appears more than once.
func tsharkField(t testing.TB, layers map[string]any, name string) string {
	t.Helper()
	v := tsharkFields(layers, name)
	if len(v) != 1 {
		t.Fatalf("tshark field %s: want one value, got %q", name, v)
	}
	return v[0]
}

// tsharkUint parses a tshark numeric field value (decimal, or 0x hex).
func tsharkUint(t testing.TB, layers map[string]any, name string) uint64 {
	t.Helper()
	s := tsharkField(t, layers, name)
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("tshark field %s=%q: %v", name, s, err)
	}
	return n
}

// TestTsharkDataHeader encapsulates packets with the outer templates (IPv4
// and IPv6 outer, IPv4 and IPv6 inner, several flag combinations) and checks
// that tshark decodes the LISP data header to exactly what was encoded,
// with nothing malformed.
func TestTsharkDataHeader(t *testing.T) {
	type tc struct {
		name       string
		src, dst   string
		inner      []byte
		lisp       HeaderFields
		p          EncapParams
		udpSum     bool
		wantLSB8   bool
		wantIID    bool
		wantNonce  bool
		wantMapVer bool
	}
	in4 := testInnerIPv4(t, 64, 0xb9, 32)
	in6 := testInnerIPv6(t, 64, 0x2a, 60)
	cases := []tc{
		{name: "v4/N", src: "192.0.2.1", dst: "198.51.100.7", inner: in4,
			lisp: HeaderFields{Flags: FlagN}, p: EncapParams{FlowHash: 1, Nonce: 0x123456}, wantNonce: true},
		{name: "v4/NLI", src: "192.0.2.1", dst: "198.51.100.7", inner: in6,
			lisp: HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 0xabcdef},
			p:    EncapParams{FlowHash: 99, Nonce: 0xfedcba, LSBs: 0x05}, wantNonce: true, wantIID: true, wantLSB8: true},
		{name: "v4/I-udpsum", src: "192.0.2.1", dst: "198.51.100.7", inner: in4, udpSum: true,
			lisp: HeaderFields{Flags: FlagI, InstanceID: 1}, p: EncapParams{FlowHash: 7}, wantIID: true},
		{name: "v6/NLI", src: "2001:db8::1", dst: "2001:db8:ffff::2", inner: in4,
			lisp: HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 4096},
			p:    EncapParams{FlowHash: 0xdeadbeef, Nonce: 1, LSBs: 0xff}, wantNonce: true, wantIID: true, wantLSB8: true},
		{name: "v6/NE-L32-udpsum", src: "2001:db8::1", dst: "2001:db8:ffff::2", inner: in6, udpSum: true,
			lisp: HeaderFields{Flags: FlagN | FlagE | FlagL},
			p:    EncapParams{FlowHash: 5, Nonce: 0xffffff, LSBs: 0x80000001}, wantNonce: true},
		{name: "v6/V", src: "2001:db8::1", dst: "2001:db8:ffff::2", inner: in6,
			lisp: HeaderFields{Flags: FlagV, SourceMapVersion: 0x123, DestMapVersion: 0xfff},
			p:    EncapParams{FlowHash: 5}, wantMapVer: true},
	}
	var frames [][]byte
	for _, c := range cases {
		o := &Outer{Src: netip.MustParseAddr(c.src), Dst: netip.MustParseAddr(c.dst), LISP: c.lisp, UDPChecksum: c.udpSum}
		pkt, err := AppendOuter(nil, o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		pkt = append(pkt, c.inner...)
		if err := PatchOuter(pkt, &c.p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		frames = append(frames, ethFrame(pkt))
	}
	got := tsharkDecode(t, frames)
	for i, c := range cases {
		l := got[i]
		t.Run(c.name, func(t *testing.T) {
			if p := tsharkField(t, l, "frame.protocols"); !strings.Contains(p, ":udp:lisp-data:ip") {
				t.Errorf("protocols %q: want udp:lisp-data:ip(v6)", p)
			}
			if d := tsharkFields(l, "udp.dstport"); len(d) == 0 || d[0] != strconv.Itoa(DataPort) {
				t.Errorf("outer udp.dstport %q, want %d", d, DataPort)
			}
			if v := tsharkUint(t, l, "lisp-data.flags"); v != uint64(c.lisp.Flags) {
				t.Errorf("flags %#x, want %#x", v, c.lisp.Flags)
			}
			for _, bit := range []struct {
				field string
				flag  uint8
			}{{"nonce", FlagN}, {"lsb", FlagL}, {"enr", FlagE}, {"mv", FlagV}, {"iid", FlagI}} {
				want := uint64(0)
				if c.lisp.Flags&bit.flag != 0 {
					want = 1
				}
				if v := tsharkUint(t, l, "lisp-data.flags."+bit.field); v != want {
					t.Errorf("flag %s = %d, want %d", bit.field, v, want)
				}
			}
			if c.wantNonce {
				if v := tsharkUint(t, l, "lisp-data.nonce"); v != uint64(c.p.Nonce&MaxNonce) {
					t.Errorf("nonce %#x, want %#x", v, c.p.Nonce)
				}
			}
			if c.wantIID {
				if v := tsharkUint(t, l, "lisp-data.iid"); v != uint64(c.lisp.InstanceID) {
					t.Errorf("iid %d, want %d", v, c.lisp.InstanceID)
				}
			}
			if c.wantLSB8 {
				if v := tsharkUint(t, l, "lisp-data.lsb8"); v != uint64(c.p.LSBs&0xff) {
					t.Errorf("lsb8 %#x, want %#x", v, c.p.LSBs&0xff)
				}
			} else if c.lisp.Flags&FlagL != 0 {
				if v := tsharkUint(t, l, "lisp-data.lsb"); v != uint64(c.p.LSBs) {
					t.Errorf("lsb %#x, want %#x", v, c.p.LSBs)
				}
			}
			if c.wantMapVer {
				if v := tsharkUint(t, l, "lisp-data.srcmapver"); v != uint64(c.lisp.SourceMapVersion) {
					t.Errorf("srcmapver %d", v)
				}
				if v := tsharkUint(t, l, "lisp-data.dstmapver"); v != uint64(c.lisp.DestMapVersion) {
					t.Errorf("dstmapver %d", v)
				}
			}
			for _, f := range []string{"lisp-data.flags.nv_invalid", "lisp-data.flags.en_invalid"} {
				if v := tsharkFields(l, f); len(v) != 0 {
					t.Errorf("tshark reports %s", f)
				}
			}
			// The checksums tshark verified (status 1 = good): every IPv4
			// header and, when sent, the outer UDP checksum.
			for _, s := range tsharkFields(l, "ip.checksum.status") {
				if s != "1" {
					t.Errorf("ip.checksum.status %s, want 1 (good)", s)
				}
			}
			sums := tsharkFields(l, "udp.checksum.status")
			if c.udpSum && (len(sums) == 0 || sums[0] != "1") {
				t.Errorf("outer udp.checksum.status %q, want 1 (good)", sums)
			}
			if src := tsharkFields(l, "udp.srcport"); len(src) == 0 || src[0] != strconv.Itoa(int(SourcePort(c.p.FlowHash))) {
				t.Errorf("udp.srcport %q, want %d", src, SourcePort(c.p.FlowHash))
			}
		})
	}
}
