// Package ospfapitest is a fake of ospfd's OSPF API server for tests: it
// accepts a client's synchronous channel, connects back to the client's
// port + 1 as ospfd does, answers every request with the reply code the
// test chooses, records the requests, and writes the notifications the
// test gives it.
package ospfapitest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
)

// Request is one request the fake received.
type Request struct {
	Type ospfapi.MsgType
	Body []byte
}

// Server is the fake API server.
type Server struct {
	ln       net.Listener
	reply    func(ospfapi.MsgType) int8
	requests chan Request
	mu       sync.Mutex
	async    net.Conn
	conns    []net.Conn
	up       chan struct{}
}

// Start listens on a loopback port; reply gives the code of each request's
// reply (nil: all OK).
func Start(reply func(ospfapi.MsgType) int8) (*Server, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if reply == nil {
		reply = func(ospfapi.MsgType) int8 { return ospfapi.ReplyOK }
	}
	s := &Server{ln: ln, reply: reply, requests: make(chan Request, 64), up: make(chan struct{}, 16)}
	go s.accept()
	return s, nil
}

// Addr is the synchronous port's address.
func (s *Server) Addr() netip.AddrPort { return netip.MustParseAddrPort(s.ln.Addr().String()) }

// Requests delivers the requests received, in order.
func (s *Server) Requests() <-chan Request { return s.requests }

// Connected delivers one value per client whose two channels are up.
func (s *Server) Connected() <-chan struct{} { return s.up }

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		peer := c.RemoteAddr().(*net.TCPAddr)
		a, err := net.Dial("tcp4", (&net.TCPAddr{IP: peer.IP, Port: peer.Port + 1}).String())
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		s.async = a
		s.conns = append(s.conns, c, a)
		s.mu.Unlock()
		s.up <- struct{}{}
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		t := ospfapi.MsgType(hdr[1])
		s.requests <- Request{Type: t, Body: body}
		out := []byte{ospfapi.Version, uint8(ospfapi.MsgReply), 0, 4}
		out = append(out, hdr[4:8]...) // the request's sequence number
		out = append(out, byte(s.reply(t)), 0, 0, 0)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// Notify writes a notification on the last client's asynchronous channel.
func (s *Server) Notify(t ospfapi.MsgType, body []byte) error {
	s.mu.Lock()
	a := s.async
	s.mu.Unlock()
	if a == nil {
		return errors.New("ospfapitest: no client")
	}
	b := []byte{ospfapi.Version, uint8(t), 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(body)))
	_, err := a.Write(append(b, body...))
	return err
}

// LSAUpdate is the body of an LSA update (or delete) notification of an
// area-scope opaque LSA of router rid in area.
func LSAUpdate(area, rid netip.Addr, opaqueType uint8, opaqueID uint32, age uint16, body []byte) []byte {
	b := make([]byte, 0, 12+ospfapi.LSAHeaderLen+len(body))
	b = append(b, 0, 0, 0, 0)
	a4 := area.As4()
	b = append(b, a4[:]...)
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, age)
	b = append(b, 0, ospfapi.LSATypeOpaqueArea)
	b = binary.BigEndian.AppendUint32(b, ospfapi.OpaqueLSAID(opaqueType, opaqueID))
	r4 := rid.As4()
	b = append(b, r4[:]...)
	b = append(b, 0x80, 0, 0, 1, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(ospfapi.LSAHeaderLen+len(body)))
	return append(b, body...)
}

// Close closes the listener and every connection.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}
