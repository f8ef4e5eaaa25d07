package request_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mr1 = netip.MustParseAddrPort("192.0.2.1:4342")
	mr2 = netip.MustParseAddrPort("192.0.2.2:4342")
	mr3 = netip.MustParseAddrPort("[2001:db8::3]:4342")
)

// env is a tracker on a fake clock and sender.
type env struct {
	clk  *reqtest.Clock
	snd  *reqtest.Sender
	tr   *request.Tracker
	done []request.Outcome
}

func newEnv(cfg request.Config) *env {
	e := &env{clk: reqtest.NewClock(t0)}
	e.snd = &reqtest.Sender{Clock: e.clk, Port: 40000}
	e.tr = request.New(e.clk, e.snd, cfg)
	return e
}

func (e *env) start(t *testing.T, s request.Spec, msgs ...[]byte) *request.Request {
	t.Helper()
	s.Done = func(_ *request.Request, o request.Outcome) { e.done = append(e.done, o) }
	if len(msgs) == 0 {
		msgs = [][]byte{[]byte("msg")}
	}
	r, err := e.tr.Start(&s, e.tr.NewNonce(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run lets the clock run out and returns the offsets (from t0) and
// destinations of every send.
func (e *env) run() (at []time.Duration, dst []netip.AddrPort) {
	e.clk.Advance(24 * time.Hour)
	for _, s := range e.snd.Take() {
		at = append(at, s.At.Sub(t0))
		dst = append(dst, s.Dst)
	}
	return at, dst
}

func TestBackoffSchedule(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name string
		cfg  request.Config
		spec request.Spec
		want []time.Duration
	}{
		{"one try", request.Config{Interval: s, MaxTries: 1}, request.Spec{}, []time.Duration{0}},
		{"doubling", request.Config{Interval: s, MaxTries: 4}, request.Spec{}, []time.Duration{0, s, 3 * s, 7 * s}},
		{"capped", request.Config{Interval: s, MaxTries: 5, MaxInterval: 3 * s}, request.Spec{}, []time.Duration{0, s, 3 * s, 6 * s, 9 * s}},
		{"spec overrides", request.Config{Interval: s, MaxTries: 9}, request.Spec{Interval: 2 * s, MaxTries: 3}, []time.Duration{0, 2 * s, 6 * s}},
		{"zero tries means one", request.Config{Interval: s}, request.Spec{}, []time.Duration{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(tc.cfg)
			tc.spec.Targets = []netip.AddrPort{mr1}
			r := e.start(t, tc.spec)
			at, _ := e.run()
			if !slices.Equal(at, tc.want) {
				t.Errorf("sent at %v, want %v", at, tc.want)
			}
			if len(e.done) != 1 || e.done[0] != request.GaveUp {
				t.Errorf("outcomes %v, want one gave-up", e.done)
			}
			if r.Tries() != len(tc.want) {
				t.Errorf("Tries() = %d, want %d", r.Tries(), len(tc.want))
			}
			st := e.tr.Stats()
			if st.GaveUp != 1 || st.Retransmits != uint64(len(tc.want)-1) || e.tr.Pending() != 0 || e.clk.Pending() != 0 {
				t.Errorf("stats %+v, pending %d, timers %d", st, e.tr.Pending(), e.clk.Pending())
			}
		})
	}
}

// TestGiveUpAfterLastWait: the request gives up when the wait after the
// last try runs out, not at the last send.
func TestGiveUpAfterLastWait(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 2})
	e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}})
	e.clk.Advance(2999 * time.Millisecond)
	if len(e.done) != 0 {
		t.Fatalf("gave up before the wait after the last try: %v", e.done)
	}
	e.clk.Advance(time.Millisecond)
	if len(e.done) != 1 || e.done[0] != request.GaveUp {
		t.Fatalf("outcomes %v, want gave-up at 3 s", e.done)
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    request.Spec
		msgs    [][]byte
		wantDst []netip.AddrPort
		wantMsg []string
	}{
		{"failover round robin", request.Spec{Targets: []netip.AddrPort{mr1, mr2, mr3}}, nil,
			[]netip.AddrPort{mr1, mr2, mr3, mr1}, []string{"msg", "msg", "msg", "msg"}},
		{"fanout", request.Spec{Targets: []netip.AddrPort{mr1, mr2}, Fanout: true, MaxTries: 2}, nil,
			[]netip.AddrPort{mr1, mr2, mr1, mr2}, []string{"msg", "msg", "msg", "msg"}},
		{"fanout per target", request.Spec{Targets: []netip.AddrPort{mr1, mr2}, Fanout: true, PerTarget: true, MaxTries: 1},
			[][]byte{[]byte("a"), []byte("b")}, []netip.AddrPort{mr1, mr2}, []string{"a", "b"}},
		{"failover per target", request.Spec{Targets: []netip.AddrPort{mr1, mr2}, PerTarget: true, MaxTries: 3},
			[][]byte{[]byte("a"), []byte("b")}, []netip.AddrPort{mr1, mr2, mr1}, []string{"a", "b", "a"}},
		{"several messages each try", request.Spec{Targets: []netip.AddrPort{mr1}, MaxTries: 2},
			[][]byte{[]byte("a"), []byte("b")}, []netip.AddrPort{mr1, mr1, mr1, mr1}, []string{"a", "b", "a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(request.Config{Interval: time.Second, MaxTries: 4})
			e.start(t, tc.spec, tc.msgs...)
			e.clk.Advance(time.Hour)
			sent := e.snd.Take()
			var dst []netip.AddrPort
			var msg []string
			for _, s := range sent {
				dst, msg = append(dst, s.Dst), append(msg, string(s.Msg))
				if s.Type != 0 {
					t.Errorf("type %v, want the spec's", s.Type)
				}
			}
			if !slices.Equal(dst, tc.wantDst) || !slices.Equal(msg, tc.wantMsg) {
				t.Errorf("sent %v %q, want %v %q", dst, msg, tc.wantDst, tc.wantMsg)
			}
		})
	}
}

func TestTargetTracksFailover(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 3})
	r := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1, mr2}})
	if r.Target() != mr1 {
		t.Fatalf("first target %v", r.Target())
	}
	e.clk.Advance(time.Second)
	if r.Target() != mr2 || r.Tries() != 2 {
		t.Fatalf("after one retransmission: target %v tries %d", r.Target(), r.Tries())
	}
}

func TestECM(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 2})
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.9.9.9")
	req := wire.MapRequest{Nonce: e.tr.NewNonce(), ITRRLOCs: []wire.Address{wire.IPAddress(src)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(dst)}}}
	msg, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := request.Spec{Type: wire.TypeMapRequest, Targets: []netip.AddrPort{mr1}, ECM: true, InnerSrc: src, InnerDst: dst}
	if _, err := e.tr.Start(&s, req.Nonce, msg); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Hour)
	sent := e.snd.Take()
	if len(sent) != 2 {
		t.Fatalf("%d sends, want 2", len(sent))
	}
	for _, x := range sent {
		var ecm wire.ECM
		if x.Type != wire.TypeECM {
			t.Errorf("type %v, want ECM", x.Type)
		}
		if err := ecm.Parse(x.Msg); err != nil {
			t.Fatal(err)
		}
		if ecm.Src != src || ecm.Dst != dst || ecm.SrcPort != 40000 || ecm.DstPort != wire.ControlPort || string(ecm.Message) != string(msg) {
			t.Errorf("ECM %v:%d -> %v:%d, message equal %v", ecm.Src, ecm.SrcPort, ecm.Dst, ecm.DstPort, string(ecm.Message) == string(msg))
		}
	}
}

func TestSendErrorsCounted(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 2})
	e.snd.NoPort = true
	e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}, ECM: true,
		InnerSrc: netip.MustParseAddr("10.0.0.1"), InnerDst: netip.MustParseAddr("10.0.0.2")})
	e.snd.NoPort = false
	e.snd.Refuse = map[netip.AddrPort]bool{mr1: true}
	e.clk.Advance(time.Hour)
	if st := e.tr.Stats(); st.SendErrors != 2 || st.Sent != 0 || st.GaveUp != 1 {
		t.Fatalf("stats %+v, want 2 send errors, 0 sent, gave up", st)
	}
}

func TestReplies(t *testing.T) {
	probeFrom := netip.MustParseAddrPort("192.0.2.1:61000") // a target's address, another port
	other := netip.MustParseAddrPort("198.51.100.7:4342")
	for _, tc := range []struct {
		name   string
		spec   request.Spec
		before func(e *env, r *request.Request) // what happens before the reply
		src    netip.AddrPort
		nonce  func(r *request.Request) wire.Nonce
		want   request.Status
		stat   func(request.Stats) uint64
	}{
		{name: "matched from anywhere", src: other, want: request.Matched},
		{name: "probe from the target", spec: request.Spec{MatchSource: true}, src: probeFrom, want: request.Matched},
		{name: "probe from elsewhere", spec: request.Spec{MatchSource: true}, src: other, want: request.WrongSource,
			stat: func(s request.Stats) uint64 { return s.WrongSource }},
		{name: "nonce mismatch", src: other, want: request.Mismatch,
			nonce: func(r *request.Request) wire.Nonce { n := r.Nonce(); n[0] ^= 1; return n },
			stat:  func(s request.Stats) uint64 { return s.NonceMismatch }},
		{name: "duplicate", src: other, want: request.Duplicate,
			before: func(e *env, r *request.Request) { e.tr.Complete(r) },
			stat:   func(s request.Stats) uint64 { return s.Duplicate }},
		{name: "late after giving up", src: other, want: request.Late,
			before: func(e *env, _ *request.Request) { e.clk.Advance(time.Hour) },
			stat:   func(s request.Stats) uint64 { return s.Late }},
		{name: "late after cancel", src: other, want: request.Late,
			before: func(e *env, r *request.Request) { e.tr.Cancel(r) },
			stat:   func(s request.Stats) uint64 { return s.Late }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(request.Config{Interval: time.Second, MaxTries: 3})
			tc.spec.Targets = []netip.AddrPort{mr1}
			r := e.start(t, tc.spec)
			if tc.before != nil {
				tc.before(e, r)
			}
			n := r.Nonce()
			if tc.nonce != nil {
				n = tc.nonce(r)
			}
			got, st := e.tr.Match(tc.src, n)
			if st != tc.want || (got != nil) != (st == request.Matched) {
				t.Fatalf("Match = %v, %v; want %v", got, st, tc.want)
			}
			if tc.stat != nil && tc.stat(e.tr.Stats()) != 1 {
				t.Errorf("stats %+v: the %v reply is not counted once", e.tr.Stats(), tc.want)
			}
			if st == request.Matched {
				e.tr.Complete(got)
				e.tr.Complete(got) // a second Complete is a no-op
				if len(e.done) != 1 || e.done[0] != request.Answered || e.tr.Pending() != 0 || e.clk.Pending() != 0 {
					t.Errorf("outcomes %v, pending %d, timers %d", e.done, e.tr.Pending(), e.clk.Pending())
				}
				e.clk.Advance(time.Hour)
				if len(e.snd.Take()) != 1 {
					t.Errorf("retransmitted after the answer")
				}
			}
		})
	}
}

// TestMatchLeavesPending: a matched reply that the caller rejects (say, bad
// authentication) leaves the request outstanding and retransmitting.
func TestMatchLeavesPending(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 2})
	r := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}})
	if _, st := e.tr.Match(mr1, r.Nonce()); st != request.Matched {
		t.Fatal(st)
	}
	e.clk.Advance(time.Second)
	if len(e.snd.Take()) != 2 || e.tr.Lookup(r.Nonce()) != r {
		t.Fatal("a matched but not completed request stopped")
	}
}

func TestKnows(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 1})
	r := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}})
	n := r.Nonce()
	if !e.tr.Knows(n) {
		t.Fatal("outstanding nonce unknown")
	}
	e.clk.Advance(time.Hour)
	if !e.tr.Knows(n) {
		t.Fatal("recently finished nonce unknown")
	}
	n[0] ^= 1
	if e.tr.Knows(n) {
		t.Fatal("a foreign nonce is known")
	}
	if st := e.tr.Stats(); st.NonceMismatch+st.Late+st.Duplicate != 0 {
		t.Fatalf("Knows counted: %+v", st)
	}
}

func TestRecentIsBounded(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 1, Recent: 2})
	var rs []*request.Request
	for range 3 {
		r := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}})
		e.tr.Complete(r)
		rs = append(rs, r)
	}
	if _, st := e.tr.Match(mr1, rs[0].Nonce()); st != request.Mismatch {
		t.Errorf("oldest nonce: %v, want forgotten (mismatch)", st)
	}
	if _, st := e.tr.Match(mr1, rs[2].Nonce()); st != request.Duplicate {
		t.Errorf("newest nonce: %v, want duplicate", st)
	}
}

func TestStartErrors(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 1})
	n := e.tr.NewNonce()
	for _, tc := range []struct {
		spec request.Spec
		msgs [][]byte
		want error
	}{
		{request.Spec{}, [][]byte{{1}}, request.ErrNoTargets},
		{request.Spec{Targets: []netip.AddrPort{mr1}}, nil, request.ErrNoMessages},
		{request.Spec{Targets: []netip.AddrPort{mr1, mr2}, PerTarget: true}, [][]byte{{1}}, request.ErrNoMessages},
	} {
		if _, err := e.tr.Start(&tc.spec, n, tc.msgs...); !errors.Is(err, tc.want) {
			t.Errorf("Start(%+v) = %v, want %v", tc.spec, err, tc.want)
		}
	}
	s := request.Spec{Targets: []netip.AddrPort{mr1}}
	if _, err := e.tr.Start(&s, n, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tr.Start(&s, n, []byte{1}); !errors.Is(err, request.ErrNonceInUse) {
		t.Errorf("reused nonce: %v", err)
	}
}

func TestNewNonceAvoidsBusy(t *testing.T) {
	seq := []wire.Nonce{{1}, {1}, {2}, {2}, {3}}
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 1, Nonce: func() wire.Nonce {
		n := seq[0]
		seq = seq[1:]
		return n
	}})
	r1 := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}}) // {1}
	r2 := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}}) // {1} busy, {2}
	e.tr.Complete(r2)
	r3 := e.start(t, request.Spec{Targets: []netip.AddrPort{mr1}}) // {2} recent, {3}
	if r1.Nonce() != (wire.Nonce{1}) || r2.Nonce() != (wire.Nonce{2}) || r3.Nonce() != (wire.Nonce{3}) {
		t.Fatalf("nonces %v %v %v", r1.Nonce(), r2.Nonce(), r3.Nonce())
	}
}

func TestDoneMayStartAnother(t *testing.T) {
	e := newEnv(request.Config{Interval: time.Second, MaxTries: 1})
	s := request.Spec{Targets: []netip.AddrPort{mr1}, Value: "first"}
	var second *request.Request
	s.Done = func(r *request.Request, o request.Outcome) {
		if r.Value() != "first" || o != request.GaveUp {
			t.Errorf("Done(%v, %v)", r.Value(), o)
		}
		second, _ = e.tr.Start(&request.Spec{Targets: []netip.AddrPort{mr2}}, e.tr.NewNonce(), []byte("again"))
	}
	if _, err := e.tr.Start(&s, e.tr.NewNonce(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second)
	if second == nil || e.tr.Pending() != 1 {
		t.Fatal("Done could not start a request")
	}
}

// discard is a sender that keeps nothing, for allocation counts.
type discard struct{}

func (discard) Send(netip.AddrPort, []byte, wire.MessageType) error { return nil }
func (discard) LocalPort(netip.AddrPort) (uint16, bool)             { return 4342, true }

func TestRetransmissionDoesNotAllocate(t *testing.T) {
	clk := reqtest.NewClock(t0)
	tr := request.New(clk, discard{}, request.Config{Interval: time.Millisecond, MaxInterval: time.Millisecond, MaxTries: 1 << 30})
	s := request.Spec{Targets: []netip.AddrPort{mr1, mr3}, ECM: true,
		InnerSrc: netip.MustParseAddr("10.0.0.1"), InnerDst: netip.MustParseAddr("10.0.0.2")}
	if _, err := tr.Start(&s, tr.NewNonce(), make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Millisecond) // grow the ECM buffer
	if n := testing.AllocsPerRun(100, func() { clk.Advance(time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocations per retransmission", n)
	}
	if tr.Stats().Retransmits < 100 {
		t.Fatalf("only %d retransmissions", tr.Stats().Retransmits)
	}
}
