package router

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/ring/xsk"
)

// offloadEgress checks interface ifc (field f) as a target of the
// offload's redirects and returns its index for the workers
// (PortConfig.Ifindex), or 0 when no program redirects to it: a core
// interface with xdp.offload (the site programs encapsulate to it, and an
// RTR's core programs re-encapsulate to it), a site
// interface with xdp.offload_decap (the core programs deliver to it). It
// refuses the interface when the kernel says it does not take XDP
// redirects and a redirecting program runs in driver mode (it would drop
// them); a program in generic mode redirects through the stack
// (dev_queue_xmit), which every interface takes. An interface checked is
// watched after the start (offloadPeers).
func (r *Router) offloadEgress(f string, ifc *Interface) (int, error) {
	opt, native, what := "xdp.offload", r.cfg.nativeSite(), "the site programs encapsulate"
	if r.cfg.Roles.RTR {
		// An RTR's core programs redirect the flows they re-encapsulate.
		native, what = native || r.cfg.nativeCore(), "the site programs encapsulate and the core programs re-encapsulate"
	}
	switch {
	case r.offload == nil:
		return 0, nil
	case ifc.Side == SideSite && !r.cfg.XDP.OffloadDecap, ifc.Side == SideCore && !r.cfg.XDP.Offload:
		return 0, nil
	case ifc.Side == SideSite:
		opt, native, what = "xdp.offload_decap", r.cfg.nativeCore(), "the core programs decapsulate"
	}
	if native {
		ok, known, err := xsk.AcceptsRedirects(ifc.Name)
		switch {
		case err != nil:
			return 0, fmt.Errorf("%s: %s: %w", f, opt, err)
		case !known:
			r.log.Warn(opt+": the kernel does not say whether the interface takes XDP redirects; where it does not, offloaded packets are dropped",
				"interface", ifc.Name)
		case !ok:
			return 0, fmt.Errorf("%s: %s: %s does not take XDP redirects (no ndo_xdp_xmit in its xdp-features), "+
				"so the packets %s would be dropped: on veth, run an XDP program on its peer "+
				"(or turn GRO on there) before rlocd starts, or turn %s off", f, opt, ifc.Name, what, opt)
		}
		dir := fastpath.OffloadEncap
		if ifc.Side == SideSite {
			dir = fastpath.OffloadDecap
		}
		r.redirectIfs = append(r.redirectIfs, redirectIf{ifc.Name, dir})
	}
	nif, err := net.InterfaceByName(ifc.Name)
	if err != nil {
		return 0, fmt.Errorf("%s.name: %w", f, err)
	}
	if r.egressNames == nil {
		r.egressNames = map[int]string{}
	}
	r.egressNames[nif.Index] = ifc.Name
	return nif.Index, nil
}

// watchRedirects opens the watch of the xdp-features of the interfaces
// the offload redirects to (redirectIfs), so that
// housekeeping follows a change at once (offloadPeers); without it,
// housekeeping reads them once a second.
func (r *Router) watchRedirects() {
	if len(r.redirectIfs) == 0 {
		return
	}
	w, err := xsk.WatchFeatures()
	if err != nil {
		r.log.Warn("xdp.offload: the XDP redirect support of the interfaces the offload redirects to is read once a second", "err", err)
		return
	}
	r.fwatch = w
}

// redirectIf is an interface the offload's programs of direction dir
// redirect to: a core interface for encapsulation, a site interface for
// decapsulation.
type redirectIf struct {
	name string
	dir  fastpath.OffloadDirection
}

// offloadPeers pauses a direction of the offload while an interface its
// programs redirect to (redirectIfs) does not take XDP redirects (on veth:
// its peer detached its XDP program after rlocd started), or cannot be
// read, since the kernel would drop what they send there; the workers then
// forward every packet of that direction. It resumes the direction, with a
// new epoch, once every one of its interfaces takes them again.
func (r *Router) offloadPeers() {
	if len(r.redirectIfs) == 0 {
		return
	}
	var bad [2]string
	var why [2]error
	for _, ri := range r.redirectIfs {
		if bad[ri.dir] != "" {
			continue
		}
		ok, known, err := xsk.AcceptsRedirects(ri.name)
		if err == nil && (ok || !known) {
			continue
		}
		if err == nil {
			err = fmt.Errorf("%s does not take XDP redirects (no ndo_xdp_xmit in its xdp-features)", ri.name)
		}
		bad[ri.dir], why[ri.dir] = ri.name, err
	}
	for _, d := range []fastpath.OffloadDirection{fastpath.OffloadEncap, fastpath.OffloadDecap} {
		switch {
		case bad[d] != "" && r.offload.Pause(d):
			r.log.Warn("xdp.offload: paused, the workers forward every packet of this direction until the interface takes XDP redirects again",
				"direction", d.String(), "interface", bad[d], "err", why[d])
		case bad[d] == "" && r.offload.Resume(d):
			r.log.Info("xdp.offload: resumed, every interface of this direction takes XDP redirects again", "direction", d.String())
		}
	}
}

// OffloadInfo is the kernel offload's state, as GET /v1/offload returns it
// (docs/offload.md): each direction's epoch and pause, its counters, and
// the flows the kernel tables hold (at most offloadListMax, the busiest
// first; Total counts them all).
type OffloadInfo struct {
	Encap    OffloadDirectionInfo `json:"encap"`
	Decap    OffloadDirectionInfo `json:"decap"`
	Counters map[string]uint64    `json:"counters"`
	Total    int                  `json:"total"`
	Flows    []OffloadFlowInfo    `json:"flows"`
}

// OffloadDirectionInfo is one direction of the offload: on
// (xdp.offload, xdp.offload_decap), its epoch (0 while off or paused) and
// whether it is paused because an interface it redirects to does not take
// XDP redirects.
type OffloadDirectionInfo struct {
	On     bool   `json:"on"`
	Epoch  uint32 `json:"epoch"`
	Paused bool   `json:"paused"`
}

// OffloadFlowInfo is one flow in a kernel table: its direction ("encap":
// a site program encapsulates it, "decap": a core program delivers it),
// instance-ID, inner destination, RLOC selection bucket (encap, reencap),
// the RLOC (encap: the remote one; decap: ours), the outer IP version of
// the packets the entry takes (decap, reencap: a flow has an entry per
// version), the interface the kernel sends it out of, the epoch it was put
// in and whether that is the current one (only current entries are used),
// and the packets the kernel sent through it.
type OffloadFlowInfo struct {
	// Direction is "encap", "decap", or "reencap" for an RTR's flow (a
	// core interface's program re-encapsulates it; paused with encap).
	Direction string `json:"direction"`
	IID       uint32 `json:"iid"`
	EID       string `json:"eid"`
	Bucket    uint8  `json:"bucket"`
	RLOC      string `json:"rloc"`
	// Over is "ipv4" or "ipv6" for decap and reencap flows, empty for
	// encap ones (their packets come from the site).
	Over      string `json:"over,omitempty"`
	Interface string `json:"interface"`
	Epoch     uint32 `json:"epoch"`
	Current   bool   `json:"current"`
	Packets   uint64 `json:"packets"`
}

// offloadListMax is the most flows GET /v1/offload lists.
const offloadListMax = 1000

// Offload returns the kernel offload's state, or false when neither
// xdp.offload nor xdp.offload_decap is on.
func (r *Router) Offload() (OffloadInfo, bool, error) {
	if r.offload == nil {
		return OffloadInfo{}, false, nil
	}
	st := r.offload.Stats()
	info := OffloadInfo{
		Encap: OffloadDirectionInfo{On: r.cfg.XDP.Offload, Paused: st.PausedEncap},
		Decap: OffloadDirectionInfo{On: r.cfg.XDP.OffloadDecap, Paused: st.PausedDecap},
		Counters: map[string]uint64{"epochs": st.Invalidations, "swept": st.Swept, "errors": st.Errors,
			"pauses": st.Pauses, "map-batches": st.MapBatches, "map-deleted": st.MapDeleted,
			"hop-batches": st.HopBatches, "hop-deleted": st.HopDeleted, "route-batches": st.RouteBatches, "route-deleted": st.RouteDeleted},
	}
	if info.Encap.On {
		info.Encap.Epoch = st.Epoch
	}
	if info.Decap.On {
		info.Decap.Epoch = st.EpochDecap
	}
	fl, total, err := r.offload.Flows(offloadListMax)
	info.Total, info.Flows = total, make([]OffloadFlowInfo, 0, len(fl))
	for _, f := range fl {
		name, ok := r.egressNames[f.Ifindex] // the entries redirect only to those
		if !ok {
			name = fmt.Sprintf("ifindex %d", f.Ifindex)
		}
		dir := f.Direction.String()
		if f.Reencap {
			dir = "reencap" // an RTR's flow, of the encap direction
		}
		over := ""
		if f.Reencap || f.Direction == fastpath.OffloadDecap {
			over = map[bool]string{false: "ipv4", true: "ipv6"}[f.Over6]
		}
		info.Flows = append(info.Flows, OffloadFlowInfo{Direction: dir, IID: f.IID, EID: f.EID.String(),
			Bucket: f.Bucket, RLOC: f.RLOC.String(), Over: over, Interface: name, Epoch: f.Epoch, Current: f.Current, Packets: f.Packets})
	}
	if err != nil {
		return info, true, fmt.Errorf("reading the offload tables: %w", err)
	}
	return info, true, nil
}

func (r *Router) apiOffload(w http.ResponseWriter, _ *http.Request) {
	info, on, err := r.Offload()
	switch {
	case !on:
		apiError(w, http.StatusNotFound, errors.New("the kernel offload is off (xdp.offload, xdp.offload_decap)"))
	case err != nil:
		apiError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, info)
	}
}
