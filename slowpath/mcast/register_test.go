package mcast

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/slowpath/request/reqtest"
	"github.com/rloc-router/rloc/wire"
)

// TestRegisterRetries: an (S,G) registration goes to every Map-Server,
// each copy signed with that Map-Server's key, and is resent with the same
// nonce Retries times, the wait doubling from RetryInterval; then the
// tracker gives up, but the nonce stays known so that a late Map-Notify is
// still taken. A withdrawal is sent once and forgets the nonce.
func TestRegisterRetries(t *testing.T) {
	c, do := newLoop(t)
	const ival = 100 * time.Millisecond
	ms := []slowpath.MapServerPeer{
		{Addr: netip.MustParseAddrPort("192.0.2.1:4342"), Key: slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "one"}},
		{Addr: netip.MustParseAddrPort("192.0.2.2:4342"), Key: slowpath.AuthKey{KeyID: 2, Alg: wire.AuthHMACSHA256128, Secret: "two"}},
	}
	clk := reqtest.NewClock(time.Unix(1000, 0))
	snd := &reqtest.Sender{Clock: clk}
	m := &Mcast{
		c:         c,
		cfg:       &slowpath.MulticastConfig{RLOC: netip.MustParseAddr("192.0.2.61"), MapServers: ms, Retries: 2, RetryInterval: ival, RegisterInterval: time.Hour},
		local:     map[slowpath.SGKey]*sgLocal{},
		regNonces: map[wire.Nonce]*sgLocal{},
		reg:       request.New(clk, snd, request.Config{Interval: ival, MaxTries: 3}),
	}
	l := m.localFor(slowpath.NewSGKey(0, netip.MustParsePrefix("10.1.1.1/32"), netip.MustParsePrefix("232.1.1.1/32")))
	do(func() { m.register(l, false) })
	nonce := l.nonce
	check := func(at time.Duration, ttl bool) {
		t.Helper()
		sent := snd.Take()
		if len(sent) != len(ms) {
			t.Fatalf("at %v: %d messages sent, want %d", at, len(sent), len(ms))
		}
		for i, s := range sent {
			if s.Dst != ms[i].Addr || s.Type != wire.TypeMapRegister || s.At.Sub(time.Unix(1000, 0)) != at {
				t.Fatalf("message %d: to %v type %v at %v, want %v at %v", i, s.Dst, s.Type, s.At, ms[i].Addr, at)
			}
			var reg wire.MapRegister
			if err := reg.Parse(s.Msg); err != nil {
				t.Fatal(err)
			}
			if reg.Nonce != nonce || !reg.Merge || reg.WantMapNotify != ttl || (reg.Records[0].TTL != 0) != ttl {
				t.Fatalf("message %d: nonce %x merge %v want-map-notify %v ttl %d", i, reg.Nonce, reg.Merge, reg.WantMapNotify, reg.Records[0].TTL)
			}
			if _, _, err := regstore.Verify(s.Msg, &reg.Auth, []regstore.Key{ms[i].Key.RegKey()}); err != nil {
				t.Fatalf("message %d not signed with its Map-Server's key: %v", i, err)
			}
		}
	}
	check(0, true)
	for _, at := range []time.Duration{ival, 3 * ival} {
		do(func() { clk.Set(time.Unix(1000, 0).Add(at)) })
		check(at, true)
	}
	do(func() { clk.Advance(time.Hour) })
	if s := snd.Take(); len(s) != 0 {
		t.Fatalf("%d messages after the last retry", len(s))
	}
	if m.regNonces[nonce] != l || l.round != nil || m.reg.Pending() != 0 {
		t.Fatalf("after giving up: nonce known %v, round %v, pending %d", m.regNonces[nonce] == l, l.round, m.reg.Pending())
	}
	do(func() { m.register(l, true) })
	if _, ok := m.regNonces[nonce]; ok || len(m.regNonces) != 0 {
		t.Fatalf("withdrawal left nonces %v", m.regNonces)
	}
	if len(snd.Sent) != 0 || m.reg.Pending() != 0 {
		t.Fatalf("withdrawal: %d messages through the tracker, %d pending; want it sent once, directly", len(snd.Sent), m.reg.Pending())
	}
}

// newLoop starts a core without sockets and returns it with a function
// running fn on its event loop.
func newLoop(t *testing.T) (*slowpath.Core, func(fn func())) {
	c, err := slowpath.NewCore(&slowpath.Config{}, slowpath.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() { c.Close() })
	return c, func(fn func()) {
		t.Helper()
		if err := c.Do(fn); err != nil {
			t.Fatal(err)
		}
	}
}
