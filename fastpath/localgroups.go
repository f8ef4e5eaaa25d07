package fastpath

import (
	"net/netip"
	"sync/atomic"
)

// LocalGroups is the set of overlay multicast groups an ETR has receivers
// for on its site interfaces, (S,G) and (*,G) per instance-ID: the slow
// path learns them from IGMP/MLD and publishes each new set with Set; the
// workers read it without locks (the set is replaced, never changed).
//
// An ETR whose underlay group carries several overlay groups (a many:1
// group mapping, draft-ietf-lisp-group-mapping) receives traffic for
// groups none of its receivers asked for; with Config.LocalGroups set, the
// worker delivers decapsulated multicast to the site only for groups in
// the set and drops the rest as DropNoReceivers.
type LocalGroups struct {
	p atomic.Pointer[map[localGroup]struct{}]
}

// LocalGroup is one (S,G) or, with Source invalid or unspecified, (*,G) an
// ETR has receivers for.
type LocalGroup struct {
	IID    uint32
	Source netip.Addr
	Group  netip.Addr
}

type localGroup struct {
	iid      uint32
	src, grp netip.Addr
}

// Set publishes the groups with receivers (a fresh set; gs is not kept).
func (l *LocalGroups) Set(gs []LocalGroup) {
	m := make(map[localGroup]struct{}, len(gs))
	for _, g := range gs {
		s := g.Source.Unmap()
		if !s.IsValid() || s.IsUnspecified() {
			s = netip.Addr{}
		}
		m[localGroup{g.IID, s, g.Group.Unmap()}] = struct{}{}
	}
	l.p.Store(&m)
}

// Has reports whether there are receivers for a packet from src to group
// in iid: for (src,group) or (*,group).
func (l *LocalGroups) Has(iid uint32, src, group netip.Addr) bool {
	m := l.p.Load()
	if m == nil {
		return false
	}
	if _, ok := (*m)[localGroup{iid, src, group}]; ok {
		return true
	}
	_, ok := (*m)[localGroup{iid, netip.Addr{}, group}]
	return ok
}
