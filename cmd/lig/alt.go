package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// ALTHop is the ALT route a Map-Resolver sent a Map-Request by, as its
// management API lists it (GET /v1/alt, "sent"). It is router.ALTSentView's
// JSON shape, written again so that lig does not link the router package
// (2.6 MB more); TestALTPath reads it from a real router.
type ALTHop struct {
	Nonce     string       `json:"nonce"`
	IID       uint32       `json:"iid"`
	EID       netip.Addr   `json:"eid"`
	Time      time.Time    `json:"time"`
	Route     netip.Prefix `json:"route"`
	NextHop   netip.Addr   `json:"next_hop"`
	ASPath    []uint32     `json:"as_path"`
	Aggregate bool         `json:"aggregate,omitempty"`
	DDT       string       `json:"ddt,omitempty"`
	DDTPrefix netip.Prefix `json:"ddt_prefix,omitzero"`
}

// altView is the part of GET /v1/alt lig reads.
type altView struct {
	Sent []ALTHop `json:"sent"`
}

// ALTPath asks the Map-Resolver's management API (rlocd's socket sock)
// which ALT route it sent the Map-Request with nonce by: the ALT path of
// the answer. It returns nil, and no error, when the Map-Resolver did not
// send that Map-Request into the ALT (its Map-Server, the interconnect, a
// remote Map-Server or DDT answered).
func ALTPath(ctx context.Context, sock string, nonce wire.Nonce) (*ALTHop, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://rlocd/v1/alt", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lig: --alt-path: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("lig: --alt-path: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("lig: --alt-path: %s", e.Error)
		}
		return nil, fmt.Errorf("lig: --alt-path: GET /v1/alt: %s", resp.Status)
	}
	var v altView
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("lig: --alt-path: %w", err)
	}
	want := fmt.Sprintf("%x", nonce[:])
	for i := len(v.Sent) - 1; i >= 0; i-- {
		if v.Sent[i].Nonce == want {
			return &v.Sent[i], nil
		}
	}
	return nil, nil
}

// PrintALTPath writes the ALT path of the Map-Reply r (as PrintTrace
// writes a DDT walk): the Map-Resolver's ALT route (prefix, next ALT
// router, AS path toward the ALT router that originates the prefix,
// aggregate) and, when DDT was asked first, what it answered; or that the
// Map-Resolver did not send the request into the ALT (h nil).
func PrintALTPath(w io.Writer, q Query, r *Result, h *ALTHop) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nALT path for nonce %x at Map-Resolver %v:\n", r.Reply.Nonce[:], q.MR)
	if h == nil {
		fmt.Fprintln(&b, "  not sent into the ALT (answered by its Map-Server, the interconnect, a remote Map-Server or DDT)")
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ALT ROUTE\tNEXT HOP\tAS PATH\tFLAGS\tBEFORE")
	var as []string
	for _, a := range h.ASPath {
		as = append(as, fmt.Sprint(a))
	}
	flags, before := "", "-"
	if h.Aggregate {
		flags = "aggregate"
	}
	if h.DDT != "" {
		before = fmt.Sprintf("DDT %s for %s", h.DDT, eidString(h.IID, h.DDTPrefix))
	}
	fmt.Fprintf(tw, "  %s\t%v\t%s\t%s\t%s\n", eidString(h.IID, h.Route), h.NextHop, strings.Join(as, " "), flags, before)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}
