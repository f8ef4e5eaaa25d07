package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/wire"
)

// seen is what the fake Map-Resolver checked in one request.
type seen struct {
	from    netip.AddrPort
	ecm     wire.ECM
	req     wire.MapRequest
	iid     uint32
	eid     netip.Prefix
	itrRLOC netip.Addr
	err     error
}

// fakeMR is a Map-Resolver on loopback: it parses each ECM and its inner
// Map-Request, records them, and lets answer decide what to send back to
// the ITR-RLOC at the inner UDP source port.
type fakeMR struct {
	conn   *net.UDPConn
	mu     sync.Mutex
	seen   []seen
	answer func(n int, s *seen) [][]byte // n counts requests from 0
	done   chan struct{}
}

func newFakeMR(t *testing.T, network, addr string, answer func(int, *seen) [][]byte) *fakeMR {
	t.Helper()
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	return startFakeMR(t, c, answer)
}

func startFakeMR(t *testing.T, c *net.UDPConn, answer func(int, *seen) [][]byte) *fakeMR {
	f := &fakeMR{conn: c, answer: answer, done: make(chan struct{})}
	go f.serve()
	t.Cleanup(func() {
		c.Close()
		<-f.done
	})
	return f
}

func (f *fakeMR) addr() netip.AddrPort { return f.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (f *fakeMR) serve() {
	defer close(f.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s := seen{from: from}
		s.err = s.parse(buf[:n])
		f.mu.Lock()
		k := len(f.seen)
		f.seen = append(f.seen, s)
		f.mu.Unlock()
		if s.err != nil {
			continue
		}
		for _, out := range f.answer(k, &s) {
			// The reply goes to the ITR-RLOC at the inner source port
			// (RFC 9301 §5.4, §6.1).
			f.conn.WriteToUDPAddrPort(out, netip.AddrPortFrom(s.itrRLOC, s.ecm.SrcPort))
		}
	}
}

func (s *seen) parse(b []byte) error {
	if err := s.ecm.Parse(b); err != nil {
		return err
	}
	if !s.ecm.ChecksumsOK() {
		return errors.New("bad inner checksums")
	}
	if s.ecm.DstPort != wire.ControlPort {
		return fmt.Errorf("inner destination port %d", s.ecm.DstPort)
	}
	msg := append([]byte(nil), s.ecm.Message...)
	if err := s.req.Parse(msg); err != nil {
		return err
	}
	if len(s.req.Records) != 1 || len(s.req.ITRRLOCs) != 1 {
		return fmt.Errorf("%d records, %d ITR-RLOCs", len(s.req.Records), len(s.req.ITRRLOCs))
	}
	iid, p, ok := s.req.Records[0].Prefix()
	if !ok {
		return errors.New("EID record is not an IP prefix")
	}
	s.iid, s.eid = iid, p
	if s.req.ITRRLOCs[0].AFI != wire.AFIIPv4 && s.req.ITRRLOCs[0].AFI != wire.AFIIPv6 {
		return fmt.Errorf("ITR-RLOC AFI %d", s.req.ITRRLOCs[0].AFI)
	}
	s.itrRLOC = s.req.ITRRLOCs[0].IP
	if s.ecm.Dst != p.Addr() {
		return fmt.Errorf("inner destination %v, EID %v", s.ecm.Dst, p.Addr())
	}
	return nil
}

func (f *fakeMR) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
}

// reply encodes a Map-Reply. It runs in the fake MR's goroutine, so it
// reports with Errorf, not Fatal.
func reply(t *testing.T, nonce wire.Nonce, recs ...wire.Record) []byte {
	t.Helper()
	m := wire.MapReply{Nonce: nonce, Records: recs}
	b, err := m.Append(nil)
	if err != nil {
		t.Errorf("encoding a Map-Reply: %v", err)
	}
	return b
}

func site2(iid uint32) wire.Record {
	return wire.Record{
		TTL: 1440, MaskLen: 24, Authoritative: true, MapVersion: 3,
		EID: wire.IIDAddress(iid, netip.MustParseAddr("10.2.0.0")),
		Locators: []wire.Locator{
			{Priority: 1, Weight: 100, MPriority: 255, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.2"))},
			{Priority: 2, Weight: 50, MPriority: 255, MWeight: 7, Address: wire.IPAddress(netip.MustParseAddr("2001:db8:ff::2"))},
		},
	}
}

func TestLookupAnswered(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(_ int, s *seen) [][]byte {
		return [][]byte{reply(t, s.req.Nonce, site2(s.iid))}
	})
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("10.2.0.10/32"), IID: 5, Tries: 3, Timeout: 2 * time.Second}
	r, err := Lookup(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	reqs := mr.requests()
	if len(reqs) != 1 {
		t.Fatalf("MR saw %d requests, want 1", len(reqs))
	}
	s := reqs[0]
	if s.err != nil {
		t.Fatalf("MR could not parse the request: %v", s.err)
	}
	if s.eid != q.EID || s.iid != 5 {
		t.Errorf("MR saw EID [%d]%v, want [5]%v", s.iid, s.eid, q.EID)
	}
	if s.itrRLOC != netip.MustParseAddr("127.0.0.1") || s.ecm.Src != s.itrRLOC {
		t.Errorf("ITR-RLOC %v, inner source %v, want 127.0.0.1", s.itrRLOC, s.ecm.Src)
	}
	if s.ecm.SrcPort != s.from.Port() || s.from != r.ITRRLOC {
		t.Errorf("inner source port %d, outer source %v, result ITR-RLOC %v", s.ecm.SrcPort, s.from, r.ITRRLOC)
	}
	if r.From != mr.addr() || r.Sent != 1 || r.Ignored != 0 || r.RTT <= 0 {
		t.Errorf("result from %v sent %d ignored %d rtt %v", r.From, r.Sent, r.Ignored, r.RTT)
	}
	if len(r.Reply.Records) != 1 || len(r.Reply.Records[0].Locators) != 2 {
		t.Fatalf("reply %+v", r.Reply)
	}
	var out bytes.Buffer
	if err := Print(&out, q, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"for [5]10.2.0.10/32", "Mapping entry for EID [5]10.2.0.0/24", "record ttl: 1440 min",
		"action: no-action", "authoritative", "map-version 3", "2 locator(s)",
		"192.0.2.2", "up", "1/100", "255/0", "2001:db8:ff::2", "down", "2/50", "255/7", "rtt",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLookupSilentMR(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(int, *seen) [][]byte { return nil })
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("10.2.0.10/32"), Tries: 3, Timeout: 100 * time.Millisecond}
	r, err := Lookup(t.Context(), q)
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("Lookup against a silent MR: %v", err)
	}
	if r.Sent != 3 {
		t.Errorf("sent %d requests, want 3", r.Sent)
	}
	reqs := mr.requests()
	if len(reqs) != 3 {
		t.Fatalf("MR saw %d requests, want 3", len(reqs))
	}
	if reqs[0].req.Nonce == reqs[1].req.Nonce || reqs[1].req.Nonce == reqs[2].req.Nonce {
		t.Error("retries reuse a nonce")
	}
	if reqs[0].req.Records[0].EID.AFI != wire.AFIIPv4 {
		t.Errorf("EID without --iid sent as AFI %d, want a plain IPv4 address", reqs[0].req.Records[0].EID.AFI)
	}
}

// TestLookupWrongNonceIgnored: a reply with a nonce never sent (and junk)
// comes first and must be ignored; the real one follows.
func TestLookupWrongNonceIgnored(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(_ int, s *seen) [][]byte {
		bad := s.req.Nonce
		bad[7] ^= 1
		decoy := site2(s.iid)
		decoy.TTL = 1
		return [][]byte{reply(t, bad, decoy), {0x20, 1, 2}, reply(t, s.req.Nonce, site2(s.iid))}
	})
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("10.2.0.10/32"), Tries: 1, Timeout: 2 * time.Second}
	r, err := Lookup(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ignored != 2 || r.Reply.Records[0].TTL != 1440 {
		t.Errorf("ignored %d, TTL %d: want 2 ignored and the real reply (1440)", r.Ignored, r.Reply.Records[0].TTL)
	}

	// Only wrong nonces: a timeout.
	mr2 := newFakeMR(t, "udp4", "127.0.0.1", func(_ int, s *seen) [][]byte {
		bad := s.req.Nonce
		bad[0] ^= 0x80
		return [][]byte{reply(t, bad, site2(0))}
	})
	q.MR, q.Timeout = mr2.addr(), 150*time.Millisecond
	if r, err := Lookup(t.Context(), q); !errors.Is(err, ErrNoReply) || r.Ignored != 1 {
		t.Fatalf("only wrong nonces: %v (ignored %d)", err, r.Ignored)
	}
}

// TestLookupRetry: the MR drops the first request and answers the second;
// a late answer to any request sent is accepted.
func TestLookupRetry(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(n int, s *seen) [][]byte {
		if n == 0 {
			return nil
		}
		return [][]byte{reply(t, s.req.Nonce, site2(0))}
	})
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("10.2.0.0/24"), Tries: 3, Timeout: 200 * time.Millisecond}
	r, err := Lookup(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 2 {
		t.Errorf("sent %d, want 2", r.Sent)
	}
	if got := mr.requests()[1].eid; got != q.EID {
		t.Errorf("EID %v, want %v", got, q.EID)
	}
}

func TestLookupIPv6Negative(t *testing.T) {
	mr := newFakeMR(t, "udp6", "::1", func(_ int, s *seen) [][]byte {
		neg := wire.Record{TTL: 15, MaskLen: 32, Action: wire.ActionNativelyForward,
			EID: wire.IIDAddress(s.iid, netip.MustParseAddr("2001:db9::"))}
		return [][]byte{reply(t, s.req.Nonce, neg)}
	})
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("2001:db9::1/128"), UseIID: true, Tries: 2, Timeout: 2 * time.Second}
	r, err := Lookup(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	s := mr.requests()[0]
	if s.itrRLOC != netip.MustParseAddr("::1") || s.req.Records[0].EID.AFI != wire.AFILCAF || s.iid != 0 {
		t.Errorf("ITR-RLOC %v, EID %v", s.itrRLOC, s.req.Records[0].EID)
	}
	var out bytes.Buffer
	if err := Print(&out, q, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[0]2001:db9::/32", "native-forward", "non-authoritative", "0 locator(s)", "15 min"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLookupMixedFamilies: an IPv6 EID asked over an IPv4 Map-Resolver; the
// inner header must still be one family.
func TestLookupMixedFamilies(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(_ int, s *seen) [][]byte {
		return [][]byte{reply(t, s.req.Nonce)}
	})
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("2001:db8:2::10/128"), Tries: 1, Timeout: 2 * time.Second}
	if _, err := Lookup(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	s := mr.requests()[0]
	if s.err != nil || s.ecm.Src != netip.IPv6Unspecified() || s.itrRLOC != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("inner source %v, ITR-RLOC %v, %v", s.ecm.Src, s.itrRLOC, s.err)
	}
}

func TestLookupCancelled(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(int, *seen) [][]byte { return nil })
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("10.2.0.10/32"), Tries: 100, Timeout: 10 * time.Second}
	start := time.Now()
	_, err := Lookup(ctx, q)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNoReply) {
		t.Fatalf("cancelled lookup: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("lookup ignored the context for %v", time.Since(start))
	}
}

func TestRunCommandLine(t *testing.T) {
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(_ int, s *seen) [][]byte {
		return [][]byte{reply(t, s.req.Nonce, site2(s.iid))}
	})
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"10.2.0.10", "--mr", mr.addr().String(), "--iid", "9", "--count", "2", "--timeout", "1s", "--source", "127.0.0.1:0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "[9]10.2.0.0/24") {
		t.Errorf("output:\n%s", out.String())
	}
	silent := newFakeMR(t, "udp4", "127.0.0.1", func(int, *seen) [][]byte { return nil })
	if code := run(t.Context(), []string{"--mr", silent.addr().String(), "--timeout", "50ms", "--count", "1", "10.2.0.10"}, &out, &errb); code != 2 {
		t.Errorf("silent MR: exit %d, want 2", code)
	}
	for _, args := range [][]string{
		{},
		{"10.2.0.10", "10.2.0.11", "--mr", "127.0.0.1"},
		{"not-an-eid", "--mr", "127.0.0.1"},
		{"10.2.0.10", "--mr", "nowhere"},
		{"10.2.0.10", "--mr", "127.0.0.1", "--iid", "-1"},
		{"10.2.0.10", "--mr", "127.0.0.1", "--count", "0"},
		{"10.2.0.10", "--mr", "127.0.0.1", "--timeout", "-1s"},
		{"10.2.0.10", "--mr", "127.0.0.1", "--source", "x:y"},
		{"10.2.0.10", "--bogus"},
	} {
		if code := run(t.Context(), args, &out, &errb); code != 1 {
			t.Errorf("lig %v: exit %d, want 1", args, code)
		}
	}
	t.Setenv("LISP_MAP_RESOLVER", "")
	if code := run(t.Context(), []string{"10.2.0.10"}, &out, &errb); code != 1 {
		t.Errorf("no MR: exit %d, want 1", code)
	}
}

func TestParseHostPort(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1":       "192.0.2.1:4342",
		"192.0.2.1:5000":  "192.0.2.1:5000",
		"2001:db8::1":     "[2001:db8::1]:4342",
		"[2001:db8::1]:7": "[2001:db8::1]:7",
	}
	for in, want := range cases {
		got, err := parseHostPort(in, 4342)
		if err != nil || got.String() != want {
			t.Errorf("parseHostPort(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if got, err := parseHostPort(":5001", 0); err != nil || got.Addr().IsValid() || got.Port() != 5001 {
		t.Errorf(":5001 -> %v, %v", got, err)
	}
}

// TestLookupInLab runs lig in xtr1 of the demo topology against a fake
// Map-Resolver in msmr: the ITR-RLOC must be xtr1's core address, picked
// by the kernel's route to the Map-Resolver.
func TestLookupInLab(t *testing.T) {
	netnstest.Require(t)
	topo, err := lab.Load("../../configs/lab/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := topo.Up(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	mrAddr, _ := topo.Addr("msmr", "core0", 4)
	var c *net.UDPConn
	if err := l.Node("msmr").Do(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(mrAddr, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mr := startFakeMR(t, c, func(_ int, s *seen) [][]byte {
		return [][]byte{reply(t, s.req.Nonce, site2(s.iid))}
	})
	q := Query{MR: mr.addr(), EID: netip.MustParsePrefix("10.2.0.10/32"), Tries: 3, Timeout: time.Second}
	var r *Result
	if err := l.Node("xtr1").Do(func() (err error) {
		r, err = Lookup(t.Context(), q)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want, _ := topo.Addr("xtr1", "core0", 4)
	if got := mr.requests()[0].itrRLOC; got != want || r.ITRRLOC.Addr() != want {
		t.Errorf("ITR-RLOC %v (result %v), want xtr1's core address %v", got, r.ITRRLOC, want)
	}
	if r.From.Addr() != mrAddr || len(r.Reply.Records) != 1 {
		t.Errorf("reply from %v with %d records", r.From, len(r.Reply.Records))
	}
}
