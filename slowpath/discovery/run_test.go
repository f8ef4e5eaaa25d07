package discovery

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi/ospfapitest"
)

// TestRunAgainstFakeOSPFD runs the component's goroutine against a fake
// ospfd: it registers the RI opaque type, its events and a database sync;
// floods its TLV when told the area is ready; hands over the Map-Resolver
// another router floods, keeps it while that LSA is replaced (a delete and
// an update at once) and drops it when that LSA is deleted; floods its
// TLV again with the new status on SetStatus.
func TestRunAgainstFakeOSPFD(t *testing.T) {
	s, err := ospfapitest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes := make(chan []netip.AddrPort, 16)
	advert := &MSFD{Function: FunctionMapResolver, Status: StatusEnabled, Port: 4342,
		Locators: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	d := New(slowpath.DiscoveryConfig{OSPFAPI: s.Addr(), MapResolvers: true}, advert,
		Options{OnChange: func(mrs, _ []netip.AddrPort) { changes <- mrs }})
	d.Start()
	defer d.Close()
	<-s.Connected()
	next := func(want ospfapi.MsgType) ospfapitest.Request {
		t.Helper()
		select {
		case r := <-s.Requests():
			if r.Type != want {
				t.Fatalf("request %v, want %v", r.Type, want)
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no %v request", want)
		}
		return ospfapitest.Request{}
	}
	if r := next(ospfapi.MsgRegisterOpaqueType); r.Body[0] != 10 || r.Body[1] != OpaqueTypeRI {
		t.Fatalf("registered % x", r.Body)
	}
	next(ospfapi.MsgRegisterEvent)
	next(ospfapi.MsgSyncLSDB)
	area := netip.IPv4Unspecified()
	if err := s.Notify(ospfapi.MsgReadyNotify, []byte{10, OpaqueTypeRI, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	want, _ := advert.Append(nil)
	if r := next(ospfapi.MsgOriginateRequest); string(r.Body[8+ospfapi.LSAHeaderLen:]) != string(want) {
		t.Fatalf("originated % x, want % x", r.Body[8+ospfapi.LSAHeaderLen:], want)
	}

	rid := netip.MustParseAddr("10.0.0.7")
	other := MSFD{Function: FunctionMapResolver, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}
	ob, _ := other.Append(nil)
	if err := s.Notify(ospfapi.MsgLSAUpdateNotify, ospfapitest.LSAUpdate(area, rid, OpaqueTypeRI, 0, 1, ob)); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, want []netip.AddrPort) {
		t.Helper()
		for {
			select {
			case got := <-changes:
				if slices.Equal(got, want) {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no change to %v (%s)", want, what)
			}
		}
	}
	wait("learned", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:4342")})

	// Replaced (a delete of the old instance, the new one at once): no
	// change; deleted with no newer instance: withdrawn after the grace.
	for _, m := range []ospfapi.MsgType{ospfapi.MsgLSADeleteNotify, ospfapi.MsgLSAUpdateNotify, ospfapi.MsgLSADeleteNotify} {
		if err := s.Notify(m, ospfapitest.LSAUpdate(area, rid, OpaqueTypeRI, 0, 5, ob)); err != nil {
			t.Fatal(err)
		}
	}
	wait("deleted", nil)
	if st := d.Stats(); st.Changes != 2 || st.Deletes != 2 {
		t.Fatalf("a replacement changed the set: %+v", st)
	}
	if err := s.Notify(ospfapi.MsgLSAUpdateNotify, ospfapitest.LSAUpdate(area, rid, OpaqueTypeRI, 0, 1, ob)); err != nil {
		t.Fatal(err)
	}
	wait("learned again", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:4342")})

	if err := d.SetStatus(StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if r := next(ospfapi.MsgOriginateRequest); r.Body[8+ospfapi.LSAHeaderLen+5] != uint8(StatusDisabled) {
		t.Fatalf("status not flooded: % x", r.Body)
	}
	if err := s.Notify(ospfapi.MsgLSADeleteNotify, ospfapitest.LSAUpdate(area, rid, OpaqueTypeRI, 0, 3600, ob)); err != nil {
		t.Fatal(err)
	}
	wait("flushed", nil)
	if st := d.Stats(); !st.Connected || st.Connects != 1 || st.Originated != 2 || st.Updates != 3 || st.Deletes != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRunTypeRefused: ospfd refuses the opaque type (its own router-info
// holds it): the component logs it, counts it and goes on learning.
func TestRunTypeRefused(t *testing.T) {
	s, err := ospfapitest.Start(func(t ospfapi.MsgType) int8 {
		if t == ospfapi.MsgRegisterOpaqueType {
			return ospfapi.ReplyOpaqueTypeInUse
		}
		return ospfapi.ReplyOK
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes := make(chan []netip.AddrPort, 16)
	advert := &MSFD{Function: FunctionMapResolver, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	d := New(slowpath.DiscoveryConfig{OSPFAPI: s.Addr(), MapResolvers: true}, advert,
		Options{OnChange: func(mrs, _ []netip.AddrPort) { changes <- mrs }})
	d.Start()
	defer d.Close()
	<-s.Connected()
	for _, want := range []ospfapi.MsgType{ospfapi.MsgRegisterOpaqueType, ospfapi.MsgRegisterEvent, ospfapi.MsgSyncLSDB} {
		if r := <-s.Requests(); r.Type != want {
			t.Fatalf("request %v, want %v", r.Type, want)
		}
	}
	other := MSFD{Function: FunctionMapResolver, Status: StatusEnabled, Locators: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}
	ob, _ := other.Append(nil)
	if err := s.Notify(ospfapi.MsgLSAUpdateNotify, ospfapitest.LSAUpdate(netip.IPv4Unspecified(), netip.MustParseAddr("10.0.0.7"), OpaqueTypeRI, 0, 1, ob)); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case got := <-changes:
			if slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:4342")}) {
				if st := d.Stats(); st.OriginateErrors != 1 || st.Connects != 1 {
					t.Fatalf("stats %+v", st)
				}
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("nothing learned after the refusal")
		}
	}
}
