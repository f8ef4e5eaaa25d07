package msx

import "github.com/rloc-router/rloc/slowpath"

// AnswerEIDName answers a Map-Request for a peer's distinguished-name EID
// from a copy (the resolver's Interconnect); false when no copy holds it.
func (x *MSX) AnswerEIDName(m *slowpath.Msg, iid uint32, name string) bool { return false }
