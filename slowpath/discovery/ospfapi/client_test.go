package ospfapi_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi/ospfapitest"
)

// TestClientAgainstFakeServer: the client opens both channels with a fake
// server, puts each request on the wire as ospf_api.h lays it out, turns a
// refusal into a ReplyErr, refuses a body that is not whole words, decodes
// the notifications, and ends the connection on a malformed one.
func TestClientAgainstFakeServer(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ospfapi.Dial(ctx, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-s.Connected()
	var re *ospfapi.ReplyErr
	if err := c.RegisterOpaqueType(ctx, ospfapi.LSATypeOpaqueArea, 4); !errors.As(err, &re) || re.Code != ospfapi.ReplyOpaqueTypeInUse {
		t.Fatalf("register: %v", err)
	}
	if got := <-s.Requests(); got.Type != ospfapi.MsgRegisterOpaqueType || got.Body[0] != 10 || got.Body[1] != 4 {
		t.Fatalf("register request %+v", got)
	}
	area := netip.MustParseAddr("0.0.0.1")
	if err := c.Originate(ctx, netip.Addr{}, area, ospfapi.LSATypeOpaqueArea, 4, 0, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	// ifaddr, area, LSA header (type 10, ID 4.0.0.0, length 24), body.
	got := <-s.Requests()
	if b := got.Body; got.Type != ospfapi.MsgOriginateRequest || b[7] != 1 || b[8+3] != 10 || b[8+4] != 4 ||
		binary.BigEndian.Uint16(b[8+18:]) != 24 || len(b) != 8+24 {
		t.Fatalf("originate request %+v", got)
	}
	if err := c.Originate(ctx, netip.Addr{}, area, ospfapi.LSATypeOpaqueArea, 4, 0, []byte{1, 2, 3}); err == nil {
		t.Fatal("a body of 3 bytes was sent")
	}
	if err := c.Delete(ctx, area, ospfapi.LSATypeOpaqueArea, 4, 0, true); err != nil {
		t.Fatal(err)
	}
	if got := <-s.Requests(); got.Type != ospfapi.MsgDeleteRequest || got.Body[3] != 1 || got.Body[4] != 10 || got.Body[5] != 4 || got.Body[7] != 1 {
		t.Fatalf("delete request %+v", got)
	}
	if err := c.RegisterEvent(ctx, ospfapi.Filter{Types: []uint8{10}, Origin: ospfapi.AnyOrigin, Areas: []netip.Addr{area}}); err != nil {
		t.Fatal(err)
	}
	if got := <-s.Requests(); got.Type != ospfapi.MsgRegisterEvent || binary.BigEndian.Uint16(got.Body) != 1<<9 ||
		got.Body[2] != 2 || got.Body[3] != 1 || got.Body[7] != 1 {
		t.Fatalf("register-event request %+v", got)
	}

	// Notifications: ready, an LSA update, a malformed one that ends the
	// connection.
	rid := netip.MustParseAddr("10.255.0.9")
	for _, n := range []struct {
		t    ospfapi.MsgType
		body []byte
	}{
		{ospfapi.MsgReadyNotify, []byte{10, 4, 0, 0, 0, 0, 0, 1}},
		{ospfapi.MsgLSAUpdateNotify, ospfapitest.LSAUpdate(area, rid, 4, 0, 5, []byte{9, 9, 9, 9})},
		{ospfapi.MsgLSAUpdateNotify, []byte{1, 2, 3}},
	} {
		if err := s.Notify(n.t, n.body); err != nil {
			t.Fatal(err)
		}
	}
	ev := <-c.Events()
	if ev.Kind != ospfapi.EventReady || ev.LSAType != 10 || ev.OpaqueType != 4 || ev.Addr != area {
		t.Fatalf("ready %+v", ev)
	}
	ev = <-c.Events()
	if ev.Kind != ospfapi.EventLSAUpdate || ev.Header.AdvRouter != rid || ev.Header.Age != 5 ||
		ev.Header.OpaqueType() != 4 || string(ev.Body) != "\x09\x09\x09\x09" || ev.Area != area {
		t.Fatalf("update %+v", ev)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("a malformed notification did not end the connection")
	}
	if c.Err() == nil {
		t.Fatal("no error after the malformed notification")
	}
	if err := c.SyncLSDB(ctx, ospfapi.Filter{}); err == nil {
		t.Fatal("a request on an ended connection succeeded")
	}
}

// TestDialNobody: nothing listens, or the server is IPv6: an error.
func TestDialNobody(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ospfapi.Dial(ctx, addr); err == nil {
		t.Fatal("dialled nobody")
	}
	if _, err := ospfapi.Dial(ctx, netip.MustParseAddrPort("[::1]:2607")); err == nil {
		t.Fatal("dialled IPv6")
	}
}
