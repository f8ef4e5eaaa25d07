package regstore_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

var sgKey = key{iid: 0, src: netip.MustParsePrefix("10.0.0.1/32"), pfx: netip.MustParsePrefix("239.1.1.1/32")}

func notifyEnv(t *testing.T) *env {
	return newEnv(t, sgKind("sg"), nil, regstore.Config{Notify: regstore.NotifyConfig{Key: keyM, Interval: time.Second, MaxTries: 4}})
}

// ackFor builds the signed Map-Notify-Ack answering the Map-Notify msg,
// as an xTR does: same nonce and records (RFC 9301 §5.7).
func ackFor(t *testing.T, msg []byte, k regstore.Key) ([]byte, *wire.MapNotifyAck) {
	t.Helper()
	var n wire.MapNotify
	if err := n.Parse(msg); err != nil {
		t.Fatal(err)
	}
	a := wire.MapNotifyAck(n)
	a.Auth = wire.NewAuth(k.KeyID, k.Alg, false)
	raw, err := a.AppendSigned(nil, k.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var p wire.MapNotifyAck
	if err := p.Parse(raw); err != nil {
		t.Fatal(err)
	}
	return raw, &p
}

func TestNotifyRetransmitsUntilAck(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name    string
		ackAt   time.Duration // after the send at this offset; <0: never
		ackKey  regstore.Key
		wantAt  []time.Duration
		wantErr error
	}{
		{"never acknowledged: gives up after 4 tries", -1, keyM, []time.Duration{0, s, 3 * s, 7 * s}, nil},
		{"acknowledged at once", 0, keyM, []time.Duration{0}, nil},
		{"acknowledged after two retransmissions", 3 * s, keyM, []time.Duration{0, s, 3 * s}, nil},
		{"ack with a wrong key is ignored", 0, regstore.Key{KeyID: 9, Alg: wire.AuthHMACSHA1_96, Secret: []byte("nope")},
			[]time.Duration{0, s, 3 * s, 7 * s}, regstore.ErrAuth},
		{"ack with another key ID is ignored", 0, regstore.Key{KeyID: 8, Alg: wire.AuthHMACSHA1_96, Secret: keyM.Secret},
			[]time.Duration{0, s, 3 * s, 7 * s}, regstore.ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := notifyEnv(t)
			rec := sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", 3, "192.0.2.1", "192.0.2.2")
			if err := e.st.Notify(sgKey, itr1, []wire.Record{rec}); err != nil {
				t.Fatal(err)
			}
			var at []time.Duration
			for {
				for _, x := range e.snd.Take() {
					if x.Dst != itr1 || x.Type != wire.TypeMapNotify {
						t.Fatalf("sent %+v", x)
					}
					var n wire.MapNotify
					if err := wire.VerifyMapNotify(x.Msg, keyM.Secret, &n); err != nil || len(n.Records) != 1 {
						t.Fatalf("unsolicited Map-Notify: %v", err)
					}
					off := x.At.Sub(t0)
					at = append(at, off)
					if tc.ackAt >= 0 && off == tc.ackAt {
						raw, ack := ackFor(t, x.Msg, tc.ackKey)
						if _, err := e.st.Ack(itr1, raw, ack); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
							t.Fatalf("Ack = %v, want %v", err, tc.wantErr)
						}
					}
				}
				next, ok := e.clk.Next()
				if !ok {
					break
				}
				e.clk.Set(next)
			}
			if !slices.Equal(at, tc.wantAt) {
				t.Fatalf("sent at %v, want %v", at, tc.wantAt)
			}
			if e.st.Notifying(sgKey, itr1) {
				t.Fatal("still notifying after the end")
			}
			st := e.st.NotifyStats()
			acked := tc.ackAt >= 0 && tc.wantErr == nil
			if acked != (st.Answered == 1) || !acked != (st.GaveUp == 1) || st.Retransmits != uint64(len(tc.wantAt)-1) {
				t.Fatalf("stats %+v", st)
			}
			if tc.wantErr != nil && e.st.Stats().AckBadAuth != 1 {
				t.Fatalf("bad Ack not counted: %+v", e.st.Stats())
			}
		})
	}
}

// TestNotifyLateAndDuplicateAcks: an Ack after giving up is late, a second
// Ack is a duplicate, an Ack of a replaced notification is late, an
// unknown nonce is a mismatch; none of them is accepted.
func TestNotifyLateAndDuplicateAcks(t *testing.T) {
	e := notifyEnv(t)
	rec := []wire.Record{sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", 3, "192.0.2.1")}
	other := netip.MustParseAddrPort("198.51.100.2:4342")

	// Late: the notification to other gave up.
	if err := e.st.Notify(sgKey, other, rec); err != nil {
		t.Fatal(err)
	}
	first := e.snd.Take()[0].Msg
	e.clk.Advance(time.Hour)
	e.snd.Take()
	raw, ack := ackFor(t, first, keyM)
	if _, err := e.st.Ack(other, raw, ack); !errors.Is(err, regstore.ErrUnmatchedAck) {
		t.Fatalf("late Ack: %v", err)
	}

	// Replaced: a newer notification of the same key and destination
	// cancels the older one, whose Ack is then late.
	if err := e.st.Notify(sgKey, itr1, rec); err != nil {
		t.Fatal(err)
	}
	old := e.snd.Take()[0].Msg
	if err := e.st.Notify(sgKey, itr1, rec); err != nil {
		t.Fatal(err)
	}
	cur := e.snd.Take()[0].Msg
	raw, ack = ackFor(t, old, keyM)
	if _, err := e.st.Ack(itr1, raw, ack); !errors.Is(err, regstore.ErrUnmatchedAck) || !e.st.Notifying(sgKey, itr1) {
		t.Fatalf("Ack of the replaced notification: %v", err)
	}
	raw, ack = ackFor(t, cur, keyM)
	// The Ack is truncated (ackFor), the unsolicited Map-Notify was full
	// (the key's default): the Ack's own variant is reported.
	if v, err := e.st.Ack(itr1, raw, ack); err != nil || e.st.Notifying(sgKey, itr1) ||
		v != (wire.AuthVariant{Alg: keyM.Alg, KeyIDSet: true}) {
		t.Fatalf("Ack of the current notification: %+v, %v", v, err)
	}
	var n wire.MapNotify
	if err := n.Parse(cur); err != nil || len(n.Auth.Data) != wire.AuthDataLen(keyM.Alg, true) {
		t.Fatalf("unsolicited Map-Notify: %d bytes of HMAC (%v), want the full length", len(n.Auth.Data), err)
	}
	if _, err := e.st.Ack(itr1, raw, ack); !errors.Is(err, regstore.ErrUnmatchedAck) {
		t.Fatalf("duplicate Ack: %v", err)
	}
	ack.Nonce[0] ^= 0xff
	if _, err := e.st.Ack(itr1, raw, ack); !errors.Is(err, regstore.ErrUnmatchedAck) {
		t.Fatalf("unknown nonce: %v", err)
	}
	st := e.st.NotifyStats()
	want := request.Stats{Started: 3, Answered: 1, GaveUp: 1, Cancelled: 1, Sent: 6, Retransmits: 3, Late: 2, Duplicate: 1, NonceMismatch: 1}
	if st != want {
		t.Fatalf("stats\n%+v\nwant\n%+v", st, want)
	}
}

func TestNotifyWithoutKey(t *testing.T) {
	e := newEnv(t, sgKind("sg"), nil, regstore.Config{})
	if err := e.st.Notify(sgKey, itr1, nil); !errors.Is(err, regstore.ErrNoNotifyKey) {
		t.Fatalf("Notify without a key: %v", err)
	}
}

func TestCancelNotify(t *testing.T) {
	e := notifyEnv(t)
	if err := e.st.Notify(sgKey, itr1, []wire.Record{sgRecord(0, "10.0.0.1/32", "239.1.1.1/32", 3)}); err != nil {
		t.Fatal(err)
	}
	e.st.CancelNotify(sgKey, itr1)
	e.clk.Advance(time.Hour)
	if n := len(e.snd.Take()); n != 1 || e.st.Notifying(sgKey, itr1) {
		t.Fatalf("%d sends after a cancel", n)
	}
}
