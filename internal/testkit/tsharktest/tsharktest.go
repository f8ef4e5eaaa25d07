// Package tsharktest runs tshark, an independent decoder of LISP, over what
// rloc puts on the wire, for tests: it writes frames to a pcap file (or
// reads a capture), decodes it with `tshark -T json`, fails the test on
// malformed packets and error-severity expert items, and finds fields in
// the decoded layers.
package tsharktest

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	"github.com/rloc-router/rloc/internal/testkit"
)

// severityError is the expert-info severity of errors in tshark's JSON
// output (epan/proto.h PI_ERROR).
const severityError = 0x00800000

// Require returns tshark's path; without tshark the test ends through
// testkit.Unavailable (fails when CI is set, skips otherwise).
func Require(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	testkit.Require(t, "tshark (scripts/deps.sh tshark)", err)
	return bin
}

// Decode writes the Ethernet frames to a pcap file and returns what
// DecodeFile makes of it; it fails the test unless tshark saw every frame.
func Decode(t testing.TB, frames [][]byte) []map[string]any {
	t.Helper()
	Require(t)
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
	pkts := decode(t, path, "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE")
	if len(pkts) != len(frames) {
		t.Fatalf("tshark decoded %d packets, wrote %d", len(pkts), len(frames))
	}
	return pkts
}

// DecodeFile decodes a capture file with `tshark -T json`, IP header
// checksum validation on (tshark has it off by default), and returns each
// packet's layers. A malformed packet or an error-severity expert item
// fails the test. UDP and TCP checksums are not checked: a capture on a
// veth sees packets before checksum offload fills them in. Decode, for
// frames a test built, checks those too.
func DecodeFile(t testing.TB, path string) []map[string]any {
	t.Helper()
	return decode(t, path)
}

func decode(t testing.TB, path string, opts ...string) []map[string]any {
	t.Helper()
	bin := Require(t)
	var stdout, stderr bytes.Buffer
	args := append([]string{"-r", path, "-T", "json", "--no-duplicate-keys", "-o", "ip.check_checksum:TRUE"}, opts...)
	cmd := exec.Command(bin, args...)
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
	out := make([]map[string]any, len(pkts))
	for i, p := range pkts {
		out[i] = p.Source.Layers
		if bad := Problems(p.Source.Layers); len(bad) > 0 {
			js, _ := json.MarshalIndent(p.Source.Layers, "", " ")
			t.Errorf("tshark packet %d: %s\n%s", i+1, strings.Join(bad, "; "), js)
		}
	}
	return out
}

// Problems lists malformed markers and error-severity expert items
// anywhere in a packet's layers. One error is tolerated: tshark calls a
// zero UDP checksum over IPv6 illegal (udp.checksum.zero), but for a packet
// that carries LISP data that is what RFC 9300 §5.3 says to send, under the
// tunnel exception of RFC 6935 §5 and RFC 6936 §4.
func Problems(layers map[string]any) []string {
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
				for _, s := range Strings(sev) {
					n, err := strconv.ParseUint(s, 0, 32)
					if err != nil || n >= severityError {
						bad = append(bad, fmt.Sprintf("expert %v: %v", v["_ws.expert.message"], s))
					}
				}
			}
			for _, kk := range sortedKeys(v) {
				walk(kk, v[kk])
			}
		case []any:
			for _, e := range v {
				walk(k, e)
			}
		}
	}
	for _, k := range sortedKeys(layers) {
		walk(k, layers[k])
	}
	return bad
}

// Strings flattens a JSON value of tshark's output into its strings.
func Strings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, Strings(e)...)
		}
		return s
	}
	return nil
}

// Fields returns every value of the tshark field name (for example
// "lisp.nonce" or "ip.src") anywhere in layers, nested subtrees included.
// Repeated layers (outer and inner "ip") come as one array thanks to
// --no-duplicate-keys and keep their order, outer first; sibling keys are
// visited in sorted order.
func Fields(layers map[string]any, name string) []string {
	var out []string
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		if v, ok := m[name]; ok {
			out = append(out, Strings(v)...)
		}
		for _, k := range sortedKeys(m) {
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

// Field returns the single value of the field name and fails the test when
// it is missing or appears more than once.
func Field(t testing.TB, layers map[string]any, name string) string {
	t.Helper()
	v := Fields(layers, name)
	if len(v) != 1 {
		t.Fatalf("tshark field %s: want one value, got %q", name, v)
	}
	return v[0]
}

// Uint parses the single value of a numeric field (decimal, or 0x hex).
func Uint(t testing.TB, layers map[string]any, name string) uint64 {
	t.Helper()
	s := Field(t, layers, name)
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("tshark field %s = %q: %v", name, s, err)
	}
	return n
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
