package router

import (
	"fmt"

	"github.com/rloc-router/rloc/ring/xsk"
)

// checkRedirects refuses core interface ifname (field f) for xdp.offload
// when the kernel says it does not take XDP redirects: the site programs
// redirect offloaded packets to it, and it would drop them. A site program
// in generic mode redirects through the stack (dev_queue_xmit), which every
// interface takes, so then nothing is checked.
func (r *Router) checkRedirects(f, ifname string) error {
	if !r.cfg.nativeSite() {
		return nil
	}
	ok, known, err := xsk.AcceptsRedirects(ifname)
	switch {
	case err != nil:
		return fmt.Errorf("%s: xdp.offload: %w", f, err)
	case !known:
		r.log.Warn("xdp.offload: the kernel does not say whether the interface takes XDP redirects; where it does not, offloaded packets are dropped",
			"interface", ifname)
	case !ok:
		return fmt.Errorf("%s: xdp.offload: %s does not take XDP redirects (no ndo_xdp_xmit in its xdp-features), "+
			"so the packets the site programs encapsulate would be dropped: on veth, run an XDP program on its peer "+
			"(or turn GRO on there) before rlocd starts, or turn xdp.offload off", f, ifname)
	}
	return nil
}

// watchRedirects opens the watch of the xdp-features of the core
// interfaces the site programs redirect to (redirectIfs), so that
// housekeeping follows a change at once (offloadPeers); without it,
// housekeeping reads them once a second.
func (r *Router) watchRedirects() {
	if len(r.redirectIfs) == 0 {
		return
	}
	w, err := xsk.WatchFeatures()
	if err != nil {
		r.log.Warn("xdp.offload: the core interfaces' XDP redirect support is read once a second", "err", err)
		return
	}
	r.fwatch = w
}

// offloadPeers pauses the offload while a core interface the site programs
// redirect to does not take XDP redirects (on veth: its peer detached its
// XDP program after rlocd started), or cannot be read, since the kernel
// would drop what they send there; the workers then forward every packet.
// It resumes the offload, with a new epoch, once every one takes them again.
func (r *Router) offloadPeers() {
	if len(r.redirectIfs) == 0 {
		return
	}
	for _, ifname := range r.redirectIfs {
		ok, known, err := xsk.AcceptsRedirects(ifname)
		if err == nil && (ok || !known) {
			continue
		}
		if r.offload.Pause() {
			if err == nil {
				err = fmt.Errorf("%s does not take XDP redirects (no ndo_xdp_xmit in its xdp-features)", ifname)
			}
			r.log.Warn("xdp.offload: paused, the workers forward every packet until the interface takes XDP redirects again",
				"interface", ifname, "err", err)
		}
		return
	}
	if r.offload.Resume() {
		r.log.Info("xdp.offload: resumed, every core interface takes XDP redirects again")
	}
}
