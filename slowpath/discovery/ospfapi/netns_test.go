package ospfapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/internal/testkit/ospftest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
)

// pair builds two namespaces joined by a veth, each running FRR's zebra
// and ospfd, and waits for their adjacency.
func pair(t *testing.T) (a, b *ospftest.Router) {
	ospftest.Require(t)
	na, nb := netnstest.New(t, "oapa"), netnstest.New(t, "oapb")
	if err := netns.Veth(na, "o0", nb, "o0"); err != nil {
		t.Fatal(err)
	}
	if err := na.AddAddr("o0", netip.MustParsePrefix("10.251.0.1/30")); err != nil {
		t.Fatal(err)
	}
	if err := nb.AddAddr("o0", netip.MustParsePrefix("10.251.0.2/30")); err != nil {
		t.Fatal(err)
	}
	a = ospftest.Start(t, na, ospftest.Config{RouterID: netip.MustParseAddr("10.255.0.1"), Interfaces: []string{"o0"}})
	b = ospftest.Start(t, nb, ospftest.Config{RouterID: netip.MustParseAddr("10.255.0.2"), Interfaces: []string{"o0"}})
	a.WaitFull(t, 1)
	b.WaitFull(t, 1)
	return a, b
}

// dial connects a client to the router's ospfd from inside its namespace.
func dial(t *testing.T, r *ospftest.Router) *ospfapi.Client {
	t.Helper()
	var c *ospfapi.Client
	ospftest.WaitFor(t, "ospfd's API server in "+r.NS.Name, func() error {
		return r.NS.Do(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			c, err = ospfapi.Dial(ctx, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ospfapi.DefaultPort))
			return err
		})
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// next waits for the next notification that match accepts.
func next(t *testing.T, c *ospfapi.Client, what string, match func(ev ospfapi.Event) bool) ospfapi.Event {
	t.Helper()
	deadline := time.After(ospftest.Patience)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("waiting for %s: asynchronous channel closed: %v", what, c.Err())
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", ospftest.Patience, what)
		}
	}
}

// testOpaqueType is the Router Information LSA's (RFC 7770), free for an
// API client while ospfd's own router-info is not configured.
const testOpaqueType = 4

// TestOpaqueLSAAcrossFRR: a client of router A's ospfd registers an
// opaque type (a second client asking for the same type is refused),
// originates an area-scope opaque LSA when ospfd says it is ready, updates
// and deletes it; a client of router B's ospfd sees each step flooded by
// the two FRR daemons. Closing A's client flushes what it originated.
func TestOpaqueLSAAcrossFRR(t *testing.T) {
	a, b := pair(t)
	ctx := context.Background()
	ca, ca2, cb := dial(t, a), dial(t, a), dial(t, b)

	if err := ca.RegisterOpaqueType(ctx, ospfapi.LSATypeOpaqueArea, testOpaqueType); err != nil {
		t.Fatal(err)
	}
	err := ca2.RegisterOpaqueType(ctx, ospfapi.LSATypeOpaqueArea, testOpaqueType)
	var re *ospfapi.ReplyErr
	if !errors.As(err, &re) || re.Code != ospfapi.ReplyOpaqueTypeInUse {
		t.Fatalf("a second registration of opaque type 4: %v, want opaque type in use", err)
	}
	area := netip.IPv4Unspecified()
	next(t, ca, "ready for opaque type 4 in area 0", func(ev ospfapi.Event) bool {
		return ev.Kind == ospfapi.EventReady && ev.OpaqueType == testOpaqueType && ev.Addr == area
	})

	filter := ospfapi.Filter{Types: []uint8{ospfapi.LSATypeOpaqueArea}, Origin: ospfapi.AnyOrigin}
	if err := cb.RegisterEvent(ctx, filter); err != nil {
		t.Fatal(err)
	}
	if err := cb.SyncLSDB(ctx, filter); err != nil {
		t.Fatal(err)
	}
	fromA := func(kind ospfapi.EventKind, body []byte) func(ospfapi.Event) bool {
		return func(ev ospfapi.Event) bool {
			return ev.Kind == kind && ev.Header.AdvRouter == a.RouterID && ev.Header.OpaqueType() == testOpaqueType &&
				ev.Header.OpaqueID() == 7 && (body == nil || bytes.Equal(ev.Body, body))
		}
	}
	for i, body := range [][]byte{[]byte("rloc-one"), []byte("rloc-two-longer!")} {
		if err := ca.Originate(ctx, netip.Addr{}, area, ospfapi.LSATypeOpaqueArea, testOpaqueType, 7, body); err != nil {
			t.Fatalf("originate %d: %v", i, err)
		}
		ev := next(t, cb, fmt.Sprintf("B receives A's LSA %q", body), fromA(ospfapi.EventLSAUpdate, body))
		if ev.Self || ev.Area != area {
			t.Fatalf("update %+v: want another router's LSA in area 0", ev)
		}
	}
	if err := ca.Delete(ctx, area, ospfapi.LSATypeOpaqueArea, testOpaqueType, 7, false); err != nil {
		t.Fatal(err)
	}
	next(t, cb, "B sees A's LSA deleted", fromA(ospfapi.EventLSADelete, nil))

	// Originate again, then end the connection: ospfd flushes it.
	if err := ca.Originate(ctx, netip.Addr{}, area, ospfapi.LSATypeOpaqueArea, testOpaqueType, 7, []byte("again...")); err != nil {
		t.Fatal(err)
	}
	next(t, cb, "B receives A's LSA again", fromA(ospfapi.EventLSAUpdate, []byte("again...")))
	ca.Close()
	next(t, cb, "B sees A's LSA flushed when A's client leaves", fromA(ospfapi.EventLSADelete, nil))
}
