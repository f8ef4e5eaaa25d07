package ospfapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Client is a connection to ospfd's API server: requests on the
// synchronous channel (one at a time: a request waits for its reply), and
// the notifications of the asynchronous channel on Events.
type Client struct {
	sync, async net.Conn
	mu          sync.Mutex // one request in flight on the synchronous channel
	seq         uint32
	wbuf        []byte
	events      chan Event
	done        chan struct{}
	errMu       sync.Mutex
	err         error
	closeOnce   sync.Once
}

// maxEventQueue bounds the notifications read and not yet taken from
// Events; the reader waits (and ospfd queues) beyond it.
const maxEventQueue = 256

// Dial connects to the API server at server (its synchronous port,
// DefaultPort unless configured otherwise): it listens for the server's
// reverse connection on an ephemeral port Q, dials from port Q-1 (the
// server connects back to the client's port + 1), and waits for the
// asynchronous channel. ctx bounds the whole exchange.
func Dial(ctx context.Context, server netip.AddrPort) (*Client, error) {
	if !server.Addr().Is4() {
		return nil, fmt.Errorf("ospfapi: %v: the API server speaks IPv4 only", server)
	}
	local := netip.IPv4Unspecified()
	if server.Addr().IsLoopback() {
		local = server.Addr()
	}
	var lastErr error
	for try := 0; try < 16; try++ {
		c, err := dialOnce(ctx, server, local)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errPortBusy) {
			break
		}
	}
	return nil, lastErr
}

var errPortBusy = errors.New("port below the listener is busy")

func dialOnce(ctx context.Context, server netip.AddrPort, local netip.Addr) (*Client, error) {
	lc := net.ListenConfig{}
	ln, err := lc.Listen(ctx, "tcp4", netip.AddrPortFrom(local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("ospfapi: listen for the asynchronous channel: %w", err)
	}
	defer ln.Close()
	q := ln.Addr().(*net.TCPAddr).Port
	if q <= 1 {
		return nil, errPortBusy
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(local.AsSlice()), Port: q - 1}}
	sc, err := d.DialContext(ctx, "tcp4", server.String())
	if err != nil {
		if isAddrInUse(err) {
			return nil, errPortBusy
		}
		return nil, fmt.Errorf("ospfapi: connect to %v: %w", server, err)
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	var ac net.Conn
	select {
	case a := <-ch:
		if a.err != nil {
			sc.Close()
			return nil, fmt.Errorf("ospfapi: accept the asynchronous channel: %w", a.err)
		}
		ac = a.c
	case <-ctx.Done():
		sc.Close()
		ln.Close()
		if a := <-ch; a.c != nil {
			a.c.Close()
		}
		return nil, fmt.Errorf("ospfapi: %v did not open the asynchronous channel: %w", server, ctx.Err())
	}
	c := &Client{sync: sc, async: ac, events: make(chan Event, maxEventQueue), done: make(chan struct{})}
	go c.readAsync()
	return c, nil
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// Events returns the notifications of the asynchronous channel; it is
// closed when the connection ends (Err then says why).
func (c *Client) Events() <-chan Event { return c.events }

// Err returns why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *Client) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

// Close closes both channels; ospfd then unregisters the client's opaque
// types and flushes the LSAs it originated for it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.fail(net.ErrClosed)
		close(c.done)
		c.sync.Close()
		c.async.Close()
	})
	return nil
}

// readAsync reads the notifications until the channel ends.
func (c *Client) readAsync() {
	defer close(c.events)
	var hdr [hdrLen]byte
	buf := make([]byte, 0, 4096)
	for {
		t, body, err := readMsg(c.async, hdr[:], buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("ospfapi: the daemon closed the asynchronous channel: %w", err)
			}
			c.fail(err)
			return
		}
		buf = body[:0]
		ev, err := parseEvent(t, body)
		if err != nil {
			c.fail(err)
			return
		}
		select {
		case c.events <- ev:
		case <-c.done:
			return
		}
	}
}

// readMsg reads one message into buf (grown as needed).
func readMsg(r io.Reader, hdr, buf []byte) (MsgType, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:hdrLen]); err != nil {
		return 0, nil, err
	}
	if hdr[0] != Version {
		return 0, nil, fmt.Errorf("ospfapi: message of protocol version %d, speak %d", hdr[0], Version)
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("ospfapi: message body: %w", err)
	}
	return MsgType(hdr[1]), buf, nil
}

// request sends one request and waits for its reply.
func (c *Client) request(ctx context.Context, t MsgType, body func(b []byte) []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Err(); err != nil {
		return err
	}
	c.seq++
	if c.seq > 0x7fffffff { // MIN_SEQ..MAX_SEQ; 0 is for notifications
		c.seq = 1
	}
	seq := c.seq
	b := append(c.wbuf[:0], Version, uint8(t), 0, 0)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = body(b)
	n := len(b) - hdrLen
	if n > maxBody {
		return fmt.Errorf("ospfapi: %s: body of %d bytes exceeds %d", t, n, maxBody)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	c.wbuf = b
	if dl, ok := ctx.Deadline(); ok {
		c.sync.SetDeadline(dl)
		defer c.sync.SetDeadline(time.Time{})
	}
	if _, err := c.sync.Write(b); err != nil {
		c.fail(err)
		return fmt.Errorf("ospfapi: send %s: %w", t, err)
	}
	var hdr [hdrLen]byte
	for {
		rt, rb, err := readMsg(c.sync, hdr[:], nil)
		if err != nil {
			c.fail(err)
			return fmt.Errorf("ospfapi: reply to %s: %w", t, err)
		}
		if rt != MsgReply || binary.BigEndian.Uint32(hdr[4:]) != seq {
			continue // not ours: a reply to a request given up on
		}
		if len(rb) < 1 {
			return fmt.Errorf("ospfapi: reply to %s: empty", t)
		}
		if code := int8(rb[0]); code != ReplyOK {
			return &ReplyErr{Req: t, Code: code}
		}
		return nil
	}
}

// RegisterOpaqueType registers an opaque type of an opaque LSA type (9, 10
// or 11) for this client; the daemon then reports, on Events, where it is
// ready to originate it.
func (c *Client) RegisterOpaqueType(ctx context.Context, lsaType, opaqueType uint8) error {
	return c.request(ctx, MsgRegisterOpaqueType, func(b []byte) []byte {
		return append(b, lsaType, opaqueType, 0, 0)
	})
}

// UnregisterOpaqueType unregisters an opaque type; the daemon flushes the
// client's LSAs of that type.
func (c *Client) UnregisterOpaqueType(ctx context.Context, lsaType, opaqueType uint8) error {
	return c.request(ctx, MsgUnregisterOpaqueType, func(b []byte) []byte {
		return append(b, lsaType, opaqueType, 0, 0)
	})
}

// RegisterEvent sets which LSA changes the daemon reports on Events.
func (c *Client) RegisterEvent(ctx context.Context, f Filter) error {
	return c.request(ctx, MsgRegisterEvent, f.append)
}

// SyncLSDB asks for the database's LSAs matching f: each arrives on Events
// as an EventLSAUpdate before this call returns.
func (c *Client) SyncLSDB(ctx context.Context, f Filter) error {
	return c.request(ctx, MsgSyncLSDB, f.append)
}

// Originate originates (or, for one the client already originated,
// refreshes with new contents) an opaque LSA: lsaType 9 (ifAddr names the
// interface), 10 (area names the area) or 11; the daemon fills age,
// advertising router, sequence number and checksum. body's length is a
// multiple of 4. ospfd sends a new instance of an LSA at most once per
// MinLSInterval (5 s, RFC 2328 §B): a change sooner waits for it.
func (c *Client) Originate(ctx context.Context, ifAddr, area netip.Addr, lsaType, opaqueType uint8, opaqueID uint32, body []byte) error {
	if len(body) > maxBody-8-LSAHeaderLen {
		return fmt.Errorf("ospfapi: LSA body of %d bytes is too long", len(body))
	}
	if len(body)%4 != 0 {
		// OSPF's LSAs are made of 32-bit words (the TLVs of RFC 7770 §2.3
		// and RFC 5250 are padded to 4 bytes); ospfd's neighbours drop
		// an LSA of another length.
		return fmt.Errorf("ospfapi: LSA body of %d bytes is not a multiple of 4", len(body))
	}
	h := LSAHeader{Type: lsaType, ID: OpaqueLSAID(opaqueType, opaqueID), Length: uint16(LSAHeaderLen + len(body))}
	return c.request(ctx, MsgOriginateRequest, func(b []byte) []byte {
		b = append4(b, ifAddr)
		b = append4(b, area)
		b = h.append(b)
		return append(b, body...)
	})
}

// Delete flushes an opaque LSA the client originated; addr is the
// interface (type 9), area (type 10) or unset (type 11). zeroLen floods
// the withdrawal without the LSA's data.
func (c *Client) Delete(ctx context.Context, addr netip.Addr, lsaType, opaqueType uint8, opaqueID uint32, zeroLen bool) error {
	var flags uint8
	if zeroLen {
		flags = deleteZeroLen
	}
	return c.request(ctx, MsgDeleteRequest, func(b []byte) []byte {
		b = append4(b, addr)
		b = append(b, lsaType, opaqueType, 0, flags)
		return binary.BigEndian.AppendUint32(b, opaqueID&0xffffff)
	})
}
