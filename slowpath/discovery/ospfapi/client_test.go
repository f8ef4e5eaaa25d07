package ospfapi

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fakeServer is the server side of the API protocol on loopback: it
// accepts the synchronous channel, connects back to the client's port + 1
// as ospfd does, answers each request with the code reply gives, and lets
// the test write notifications.
type fakeServer struct {
	t     *testing.T
	ln    net.Listener
	sync  net.Conn
	async net.Conn
	reqs  chan []byte
	// ready is closed once both channels are up (or failed: err).
	ready chan struct{}
	err   error
}

func newFakeServer(t *testing.T, reply func(t MsgType) int8) (*fakeServer, netip.AddrPort) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, reqs: make(chan []byte, 16), ready: make(chan struct{})}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			s.err = err
			close(s.ready)
			return
		}
		s.sync = c
		peer := c.RemoteAddr().(*net.TCPAddr)
		a, err := net.Dial("tcp4", (&net.TCPAddr{IP: peer.IP, Port: peer.Port + 1}).String())
		if err != nil {
			s.err = err
			c.Close()
			close(s.ready)
			return
		}
		s.async = a
		close(s.ready)
		var hdr [hdrLen]byte
		for {
			typ, body, err := readMsg(c, hdr[:], nil)
			if err != nil {
				return
			}
			s.reqs <- append([]byte{uint8(typ)}, body...)
			out := []byte{Version, uint8(MsgReply), 0, 4}
			out = append(out, hdr[4:8]...) // the request's sequence number
			out = append(out, byte(reply(typ)), 0, 0, 0)
			c.Write(out)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.ready
		if s.err == nil {
			s.sync.Close()
			s.async.Close()
		}
	})
	return s, netip.MustParseAddrPort(ln.Addr().String())
}

// notify writes a notification on the asynchronous channel.
func (s *fakeServer) notify(t MsgType, body []byte) {
	b := []byte{Version, uint8(t), 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(body)))
	if _, err := s.async.Write(append(b, body...)); err != nil {
		s.t.Fatal(err)
	}
}

func TestClientAgainstFakeServer(t *testing.T) {
	s, addr := newFakeServer(t, func(t MsgType) int8 {
		if t == MsgRegisterOpaqueType {
			return ReplyOpaqueTypeInUse
		}
		return ReplyOK
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-s.ready
	if s.err != nil {
		t.Fatal(s.err)
	}
	var re *ReplyErr
	if err := c.RegisterOpaqueType(ctx, LSATypeOpaqueArea, 4); !errors.As(err, &re) || re.Code != ReplyOpaqueTypeInUse {
		t.Fatalf("register: %v", err)
	}
	if got := <-s.reqs; got[0] != uint8(MsgRegisterOpaqueType) || got[1] != 10 || got[2] != 4 {
		t.Fatalf("register request % x", got)
	}
	area := netip.MustParseAddr("0.0.0.1")
	if err := c.Originate(ctx, netip.Addr{}, area, LSATypeOpaqueArea, 4, 0, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	// ifaddr, area, LSA header (type 10, ID 4.0.0.0, length 24), body.
	got := <-s.reqs
	if got[0] != uint8(MsgOriginateRequest) || got[8] != 1 || got[9+3] != 10 || got[9+4] != 4 ||
		binary.BigEndian.Uint16(got[9+18:]) != 24 || len(got) != 1+8+24 {
		t.Fatalf("originate request % x", got)
	}
	if err := c.Originate(ctx, netip.Addr{}, area, LSATypeOpaqueArea, 4, 0, []byte{1, 2, 3}); err == nil {
		t.Fatal("a body of 3 bytes was sent")
	}
	if err := c.Delete(ctx, area, LSATypeOpaqueArea, 4, 0, true); err != nil {
		t.Fatal(err)
	}
	if got := <-s.reqs; got[0] != uint8(MsgDeleteRequest) || got[4] != 1 || got[5] != 10 || got[6] != 4 || got[8] != deleteZeroLen {
		t.Fatalf("delete request % x", got)
	}
	if err := c.RegisterEvent(ctx, Filter{Types: []uint8{10}, Origin: AnyOrigin, Areas: []netip.Addr{area}}); err != nil {
		t.Fatal(err)
	}
	if got := <-s.reqs; got[0] != uint8(MsgRegisterEvent) || binary.BigEndian.Uint16(got[1:]) != 1<<9 || got[3] != 2 || got[4] != 1 || got[8] != 1 {
		t.Fatalf("register-event request % x", got)
	}

	// Notifications: ready, an LSA update, a malformed one that ends the
	// connection.
	s.notify(MsgReadyNotify, []byte{10, 4, 0, 0, 0, 0, 0, 1})
	lsa := []byte{0, 5, 0x42, 10, 4, 0, 0, 0, 10, 255, 0, 9, 0x80, 0, 0, 1, 0, 0, 0, 24, 9, 9, 9, 9}
	s.notify(MsgLSAUpdateNotify, append([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, lsa...))
	s.notify(MsgLSAUpdateNotify, []byte{1, 2, 3})
	ev := <-c.Events()
	if ev.Kind != EventReady || ev.LSAType != 10 || ev.OpaqueType != 4 || ev.Addr != area {
		t.Fatalf("ready %+v", ev)
	}
	ev = <-c.Events()
	if ev.Kind != EventLSAUpdate || ev.Header.AdvRouter != netip.MustParseAddr("10.255.0.9") || ev.Header.Age != 5 ||
		ev.Header.OpaqueType() != 4 || string(ev.Body) != "\x09\x09\x09\x09" || ev.Area != area {
		t.Fatalf("update %+v", ev)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("a malformed notification did not end the connection")
	}
	if c.Err() == nil {
		t.Fatal("no error after the malformed notification")
	}
	if err := c.SyncLSDB(ctx, Filter{}); err == nil {
		t.Fatal("a request on an ended connection succeeded")
	}
}

// TestDialNobody: nothing listens: the error names the server.
func TestDialNobody(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, addr); err == nil {
		t.Fatal("dialled nobody")
	}
	if _, err := Dial(ctx, netip.MustParseAddrPort("[::1]:2607")); err == nil {
		t.Fatal("dialled IPv6")
	}
}

// FuzzParseEvent: any notification body parses or fails cleanly, and an
// LSA's body never reaches past the message.
func FuzzParseEvent(f *testing.F) {
	lsa := []byte{0, 5, 0x42, 10, 4, 0, 0, 0, 10, 255, 0, 9, 0x80, 0, 0, 1, 0, 0, 0, 24, 9, 9, 9, 9}
	f.Add(uint8(MsgLSAUpdateNotify), append([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, lsa...))
	f.Add(uint8(MsgReadyNotify), []byte{10, 4, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		ev, err := parseEvent(MsgType(typ), b)
		if err != nil {
			return
		}
		if len(ev.Body) > len(b) {
			t.Fatalf("body of %d bytes from %d", len(ev.Body), len(b))
		}
	})
}
