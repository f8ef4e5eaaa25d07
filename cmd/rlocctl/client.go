package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
)

// defaultSocket is where rlocd listens unless configured otherwise.
const defaultSocket = "/run/rloc/rlocd.sock"

// client is an HTTP client over rlocd's management socket.
type client struct {
	sock string
	hc   *http.Client
}

func newClient(sock string) *client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &client{sock: sock, hc: &http.Client{Transport: tr}}
}

// explain turns a failure to reach the socket into an error that says what
// to do; other errors pass unchanged.
func explain(err error, sock string) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("cannot reach rlocd: is rlocd running? looked for %s (set --socket or $RLOC_MGMT_SOCKET)", sock)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach rlocd: nothing listens on %s (a stale socket?); is rlocd running? (--socket or $RLOC_MGMT_SOCKET)", sock)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on %s: run rlocctl as root or as a member of the rloc group (sudo usermod -aG rloc $USER, then log in again)", sock)
	}
	return err
}

// send performs one request and returns the response, with reachability
// errors explained.
func (c *client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://rlocd"+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, explain(err, c.sock)
	}
	return resp, nil
}

// do performs a request and decodes the JSON answer into out (a *[]byte
// receives the raw body).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.doHeader(ctx, method, path, body, out)
	return err
}

// doHeader is do that also returns the answer's header.
func (c *client) doHeader(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	return resp.Header, c.decode(resp, method, path, out)
}

// decode reads resp's body into out, or the error it reports.
func (c *client) decode(resp *http.Response, method, path string, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		if msg := bytes.TrimSpace(b); len(msg) > 0 && len(msg) < 200 {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// socketDefault is $RLOC_MGMT_SOCKET, or the default path.
func socketDefault() string {
	if s := os.Getenv("RLOC_MGMT_SOCKET"); s != "" {
		return s
	}
	return defaultSocket
}
