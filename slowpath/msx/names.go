package msx

import "github.com/rloc-router/rloc/slowpath"

// AnswerEIDName answers a Map-Request for a peer's distinguished-name EID
// (the resolver's Interconnect): from the first copy that holds the name,
// with a proxy Map-Reply carrying the owner's record and TTL. Invoke mode
// routes by prefix and is not asked for names. It reports false, sending
// nothing, when no copy holds the name.
func (x *MSX) AnswerEIDName(m *slowpath.Msg, iid uint32, name string) bool {
	for _, a := range x.ags {
		if a.cfg.Mode != slowpath.MSXModeCopy {
			continue
		}
		if e := a.req.byName[slowpath.EIDName{IID: iid, Name: name}]; e != nil && a.req.reply(a, m, e) {
			return true
		}
	}
	return false
}
