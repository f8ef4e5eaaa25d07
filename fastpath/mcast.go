package fastpath

import (
	"net/netip"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// mcastPlanMax bounds the worker's plan memo; it is cleared when full.
const mcastPlanMax = 1024

// mcastKey identifies a replication plan: the map-cache locator set (shared,
// immutable: a changed RLE is a new set) and whether the worker replicates
// as an RTR (packet arrived encapsulated) or as an ITR.
type mcastKey struct {
	loc *cache.Locators
	rtr bool
}

// mcastState is the worker's multicast replication state: plans built from
// map-cache RLEs on the first packet that needs them, and the frames one
// round of copies is made into. It implements replicate.Allocator.
type mcastState struct {
	plans  map[mcastKey]*replicate.Plan // nil plan: RLE refused
	frames [ring.IdealBatchSize]ring.Frame
	n      int
	port   ring.Port
	w      *Worker
}

// Alloc gives replicate the IP part of a fresh frame (after room for the
// Ethernet header).
func (m *mcastState) Alloc(n int) ([]byte, bool) {
	if m.n == len(m.frames) || m.port.Alloc(m.frames[m.n:m.n+1]) == 0 {
		m.w.extra[ExtraPoolEmpty]++
		return nil, false
	}
	f := &m.frames[m.n]
	if !f.SetLen(wire.EthernetLen + n) {
		m.w.free(f)
		return nil, false
	}
	m.n++
	return f.Bytes()[wire.EthernetLen:], true
}

func noTemplate(netip.Addr) []byte { return nil }

// plan returns the replication plan of locator set l, building it once.
func (m *mcastState) plan(l *cache.Locators, rtr bool) *replicate.Plan {
	k := mcastKey{l, rtr}
	if p, ok := m.plans[k]; ok {
		return p
	}
	if m.plans == nil || len(m.plans) >= mcastPlanMax {
		m.plans = make(map[mcastKey]*replicate.Plan)
	}
	cfg := replicate.PlanConfig{Role: replicate.RoleITR, Self: []netip.Addr{m.w.rloc4, m.w.rloc6},
		Template: noTemplate} // the cache built the templates it could
	if rtr {
		cfg.Role, cfg.Level = replicate.RoleRTR, replicate.LevelFromRLE
	}
	p, err := replicate.NewPlanFromHops(l.RLE, cfg)
	if err != nil {
		p = nil // refused RLE: its packets are dropped (DropNoRoute)
	}
	m.plans[k] = p
	return p
}

// replicate sends a multicast packet (pk) to every copy of the
// replication plan of its (S,G)/(*,G) entry: an ITR to the lowest RLE
// level, an RTR to the level above its own (RFC 8060 §4.9). A miss is held
// like a unicast one (the slow path Map-Requests (S,G)).
func (w *Worker) replicate(pk *pktInfo, f *ring.Frame) {
	e, ok := w.memo.rd.LookupMulticast(pk.iid, pk.src, pk.dst)
	if !ok {
		w.miss(pk, f)
		return
	}
	m := &w.mc
	m.w = w
	p := m.plan(e.Locators(), pk.rtr)
	if p == nil || p.Len() == 0 {
		w.drop(f, DropNoRoute)
		return
	}
	if !w.prepareInner(pk, f) {
		return
	}
	inner := f.Bytes()[pk.innerOff : pk.innerOff+pk.innerLen]
	w.ep.FlowHash = pk.hash // taken while parsing (the TTL is not part of it)
	w.ep.Nonce = w.nonce()
	w.ep.LSBs = w.lsbs
	w.ep.ID = w.ipid
	w.ipid++
	m.port = w.ports[pk.slot].p
	copies := p.Copies()
	for from := 0; from < len(copies); from += len(m.frames) {
		m.n = 0
		_, err := p.ReplicateRange(inner, &w.ep, m, from, from+len(m.frames))
		if err != nil && err != replicate.ErrNoBuffer {
			for i := range m.n {
				w.drop(&m.frames[i], DropBadLength)
			}
			break
		}
		for i := range m.n {
			w.sendCopy(&m.frames[i], copies[from+i].Dst)
		}
		if err != nil {
			break // pool empty: counted as ExtraPoolEmpty
		}
	}
	w.free(f)
}

// sendCopy sends one replicated copy (Ethernet room + outer IP packet) to
// the next hop of dst.
func (w *Worker) sendCopy(f *ring.Frame, dst netip.Addr) {
	var adj nexthop.Adjacency
	out, st := w.outerHop(f, dst, &adj)
	if out < 0 && st == nexthop.AdjResolved || st == nexthop.AdjNoRoute {
		return
	}
	if f.Len()-wire.EthernetLen > w.pathMTU(out, &adj) {
		w.drop(f, DropMTUExceeded)
		return
	}
	et := wire.EtherTypeIPv6
	if f.Bytes()[wire.EthernetLen]>>4 == 4 {
		et = wire.EtherTypeIPv4
	}
	w.c.Inc(CounterReplicate)
	w.l2out(f, &adj, st, out, et)
}
