package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rloc-router/rloc/slowpath/resolver"
	"github.com/rloc-router/rloc/wire"
)

// Hop is one step of a DDT trace: the node or Map-Server asked and what
// it answered.
type Hop struct {
	// Target is who was asked; Silent says it did not answer within the
	// timeout (Referral is then empty).
	Target netip.AddrPort
	Silent bool
	// Referral is the Map-Referral's record as a cache entry (prefix,
	// type, A and I bits, targets by priority with their weights); TTL is
	// the record's TTL in minutes.
	Referral resolver.Referral
	TTL      uint32
	// Signed tells whether the record carried a signature (RFC 8111
	// §6.4.1) and KeyTag its key tag; lig does not verify it.
	Signed bool
	KeyTag uint16
	// RTT is the time from the Map-Request to the referral.
	RTT time.Duration
}

// Trace is the result of a DDT walk.
type Trace struct {
	// ITRRLOC is lig's address and port.
	ITRRLOC netip.AddrPort
	// Hops are the answers, in order.
	Hops []Hop
	// Reply is the Map-Reply after MS-ACK, nil when none came.
	Reply *Result
	// End says how the walk ended when it did not end with a Map-Reply
	// (a negative referral, no progress, the hop bound, silence).
	End string
}

// ErrNoAnswer is returned when a DDT walk ended without an answer: every
// target of a hop was silent, a referral made no progress or the hop bound
// was reached.
var ErrNoAnswer = errors.New("DDT walk ended without an answer")

// TraceDDT resolves q.EID through a Delegated Database Tree itself (RFC
// 8111 §7.3), as a DDT Map-Resolver would: it sends the Map-Request in an
// ECM with the DDT bit to the root q.MR, follows each NODE-REFERRAL and
// MS-REFERRAL to its targets (by priority, weighted among equals, as the
// resolver orders them), and stops at MS-ACK (then waits for the Map-Reply
// the ETR or the proxying Map-Server sends lig), at a negative referral
// (MS-NOT-REGISTERED, DELEGATION-HOLE, NOT-AUTHORITATIVE), at a referral
// no more specific than the one before, or at a referral beyond maxHops
// (as the resolver's hop bound). Every
// node is asked at the root's port. Each hop's targets get q.Tries
// Map-Requests in all, q.Timeout each, in turn.
func TraceDDT(ctx context.Context, q Query, maxHops int) (*Trace, error) {
	if !q.MR.IsValid() || !q.EID.IsValid() {
		return nil, errors.New("lig: no DDT root or no EID")
	}
	q.Tries, q.Timeout = max(q.Tries, 1), orDefault(q.Timeout, 2*time.Second)
	root := netip.AddrPortFrom(q.MR.Addr().Unmap(), q.MR.Port())
	conn, self, err := listen(q, root)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	tr := &Trace{ITRRLOC: self}
	req, ecm := newRequest(q, self)
	ecm.DDT = true
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	cur := resolver.Referral{Targets: []netip.AddrPort{root}, Root: true}
	var targets []netip.AddrPort
	var out []byte
	in := make([]byte, 65536)
	sent := map[wire.Nonce]time.Time{}
	var reply wire.MapReply
	var ref wire.MapReferral
	for hop := 0; ; hop++ {
		targets = cur.Order(rng, targets)
		var got *Hop
		acked := false
		for try := 0; try < q.Tries && got == nil; try++ {
			dst := targets[try%len(targets)]
			if out, err = sendRequest(conn, dst, &req, &ecm, out); err != nil {
				return tr, err
			}
			sent[req.Nonce] = time.Now()
			deadline := time.Now().Add(q.Timeout)
			for got == nil || (acked && tr.Reply == nil) {
				n, from, ok, err := recv(ctx, conn, deadline, in)
				if err != nil {
					return tr, err
				}
				if !ok {
					break
				}
				typ, _ := wire.PeekType(in[:n])
				switch {
				case typ == wire.TypeMapReply && reply.Parse(in[:n]) == nil:
					if at, ok := sent[reply.Nonce]; ok && tr.Reply == nil {
						tr.Reply = &Result{ITRRLOC: self, From: from, RTT: time.Since(at), Sent: len(sent), Reply: reply}
					}
				case typ == wire.TypeMapReferral && got == nil && ref.Parse(in[:n]) == nil && len(ref.Records) > 0 &&
					from.Addr() == dst.Addr():
					at, ok := sent[ref.Nonce]
					if !ok {
						continue
					}
					rec := &ref.Records[0]
					r, ok := resolver.ReferralFromRecord(rec, root.Port(), time.Now())
					if !ok {
						continue
					}
					h := Hop{Target: dst, Referral: r, TTL: rec.TTL, RTT: time.Since(at), Signed: rec.SigCount > 0}
					if sigs := ref.RecordSignatures(0); len(sigs) > 0 {
						h.KeyTag = sigs[0].KeyTag
					}
					got, acked = &h, r.Type == wire.ReferralMSAck
					if acked {
						deadline = time.Now().Add(q.Timeout) // the Map-Reply follows the MS-ACK
					}
				}
			}
			if got == nil {
				tr.Hops = append(tr.Hops, Hop{Target: dst, Silent: true, RTT: q.Timeout})
			}
		}
		if got == nil {
			tr.End = fmt.Sprintf("no answer from %d target(s) after %d Map-Request(s)", len(targets), q.Tries)
			return tr, fmt.Errorf("lig: %w: %s", ErrNoAnswer, tr.End)
		}
		tr.Hops = append(tr.Hops, *got)
		r := &got.Referral
		switch r.Type {
		case wire.ReferralNode, wire.ReferralMS:
			switch {
			case len(r.Targets) == 0:
				tr.End = "referral without targets"
			case !cur.Root && r.Prefix.Bits() <= cur.Prefix.Bits():
				tr.End = fmt.Sprintf("no progress: %v after %v", r.Prefix, cur.Prefix)
			case hop+1 > maxHops:
				tr.End = fmt.Sprintf("%d referrals, more than the hop bound %d", hop+1, maxHops)
			default:
				cur = *r
				continue
			}
			return tr, fmt.Errorf("lig: %w: %s", ErrNoAnswer, tr.End)
		case wire.ReferralMSAck:
			if tr.Reply == nil {
				tr.End = "MS-ACK, but no Map-Reply within the timeout"
				return tr, fmt.Errorf("lig: %w: %s", ErrNoReply, tr.End)
			}
			return tr, nil
		default:
			tr.End = fmt.Sprintf("%v for %s: negative", r.Type, eidString(r.IID, r.Prefix))
			return tr, nil
		}
	}
}

// orDefault is d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// PrintTrace writes a DDT trace: one line per hop (who was asked, the
// referral type, XEID-prefix, TTL, A/I bits, signature, the time it took
// and where it leads), then the Map-Reply as Print shows it, or how the
// walk ended.
func PrintTrace(w io.Writer, q Query, tr *Trace) error {
	var b strings.Builder
	fmt.Fprintf(&b, "DDT trace for %s from %v, root %v\n", eidString(q.IID, q.EID), tr.ITRRLOC, q.MR)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOP\tASKED\tREFERRAL\tXEID-PREFIX\tTTL\tFLAGS\tTIME\tREFERRAL SET (priority/weight)")
	n := 0
	for _, h := range tr.Hops {
		if h.Silent {
			fmt.Fprintf(tw, "-\t%v\tno answer\t\t\t\t%.3f ms\t\n", h.Target, ms(h.RTT))
			continue
		}
		n++
		r := &h.Referral
		var flags []string
		if r.Authoritative {
			flags = append(flags, "A")
		}
		if r.Incomplete {
			flags = append(flags, "I")
		}
		if h.Signed {
			flags = append(flags, fmt.Sprintf("signed(tag %d)", h.KeyTag))
		}
		var set []string
		for i, a := range r.Targets {
			set = append(set, fmt.Sprintf("%v (%d/%d)", a.Addr(), r.Priorities[i], r.Weights[i]))
		}
		fmt.Fprintf(tw, "%d\t%v\t%v\t%s\t%s\t%s\t%.3f ms\t%s\n", n, h.Target, r.Type, eidString(r.IID, r.Prefix),
			ttlString(h.TTL), strings.Join(flags, ","), ms(h.RTT),
			strings.Join(set, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if tr.End != "" {
		fmt.Fprintf(&b, "%s\n", tr.End)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if tr.Reply != nil {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
		return Print(w, q, tr.Reply)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
