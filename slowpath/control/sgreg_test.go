package control

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// sgRegister returns a signed (S,G) Map-Register of one RLE entry at
// level (128: an ETR's receivers; below: an RTR's tree registration),
// with the xTR-ID xtr when it is not zero.
func sgRegister(t *testing.T, level uint8, rloc string, xtr wire.XTRID) []byte {
	t.Helper()
	reg := wire.MapRegister{Merge: true, Nonce: newNonce(), Auth: wire.NewAuth(testKey.KeyID, testKey.Alg, false),
		Records: []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), 3,
			[]wire.RLENode{{Level: level, Address: wire.IPAddress(netip.MustParseAddr(rloc))}})}}
	if xtr != (wire.XTRID{}) {
		reg.XTRIDPresent, reg.XTRID, reg.SiteID = true, xtr, 7
	}
	b, err := reg.AppendSigned(nil, []byte(testKey.Secret))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// events returns the events of kind k.
func (l *eventLog) of(k EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, ev := range l.evs {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// TestSGRegisterRequireXTRID: (S,G) registrations of ETRs (level 128) and
// of RTRs for their trees (level below 128) are refused without xTR-ID
// when the site requires it, and report accepted, rejected and expired
// registration events like unicast registrations.
func TestSGRegisterRequireXTRID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level uint8
	}{{"etr", 128}, {"rtr-tree", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			site := mcSite()
			site.RequireXTRID = true
			clk := newFakeClock()
			ms := newEngineWith(t, Config{
				MapServer: &MapServerConfig{Sites: []SiteConfig{site}, RegistrationTimeout: time.Minute},
				Multicast: &MulticastConfig{Key: mcKey},
				Events:    log.add,
			}, nil, slowpathOptions(clk))
			src := netip.MustParseAddrPort("192.0.2.1:4342")

			inject(t, ms, src, sgRegister(t, tc.level, "192.0.2.1", wire.XTRID{}))
			if got := ms.McastRLE(0, srcEID, grpEID); len(got) != 0 {
				t.Fatalf("registered without the xTR-ID the site requires: %v", got)
			}
			if st := ms.Stats(); st.Msg(wire.TypeMapRegister).Rejected != 1 {
				t.Fatalf("register counters %+v, want 1 rejected", st.Msg(wire.TypeMapRegister))
			}
			rej := log.of(EventRegistrationRejected)
			if len(rej) != 1 || rej[0].Site != "mc" || rej[0].Source != src || !strings.Contains(rej[0].Reason, "xTR-ID") {
				t.Fatalf("rejected events %+v", rej)
			}

			inject(t, ms, src, sgRegister(t, tc.level, "192.0.2.1", wire.XTRID{1}))
			if got := ms.McastRLE(0, srcEID, grpEID); len(got) != 1 {
				t.Fatalf("registration with xTR-ID not merged: %v", got)
			}
			acc := log.of(EventRegistrationAccepted)
			want := EIDPrefix{IID: 0, Prefix: grpEID}
			if len(acc) != 1 || acc[0].Site != "mc" || acc[0].EID != want || acc[0].Source != src {
				t.Fatalf("accepted events %+v, want one for %v", acc, want)
			}

			clk.Add(time.Minute + time.Second)
			if err := ms.Core().Tick(); err != nil {
				t.Fatal(err)
			}
			if got := ms.McastRLE(0, srcEID, grpEID); len(got) != 0 {
				t.Fatalf("registration did not expire: %v", got)
			}
			exp := log.of(EventRegistrationExpired)
			if len(exp) != 1 || exp[0].Site != "mc" || exp[0].EID != want || exp[0].Source != src {
				t.Fatalf("expired events %+v", exp)
			}
		})
	}
}
