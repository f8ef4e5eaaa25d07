package control

import (
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/msx"
)

// MSXAgreement is one interconnect agreement with its state and counters,
// as Engine.MSXAgreements lists it.
type MSXAgreement = msx.Agreement

// MSXStats are the interconnect's counters.
type MSXStats = msx.Stats

// MSXAgreements lists the interconnect agreements; ok is false when the
// router has no interconnect.
func (e *Engine) MSXAgreements() (out []MSXAgreement, ok bool) {
	if e.msx == nil {
		return nil, false
	}
	if err := e.c.Do(func() { out = e.msx.Agreements() }); err != nil {
		out = e.msx.Agreements() // closed: nothing changes any more
	}
	return out, true
}

// MSXCopy returns the copy held under the agreement name: each mapping's
// record as the owner sent it, by EID prefix (for tests and audits); ok is
// false when there is no such agreement.
func (e *Engine) MSXCopy(name string) (out map[slowpath.EIDPrefix][]byte, ok bool) {
	if e.msx == nil {
		return nil, false
	}
	_ = e.c.Do(func() { out, ok = e.msx.Copy(name) })
	return out, ok
}

// MSXCopyNames returns the distinguished-name mappings of the copy held
// under the agreement name, as MSXCopy does for prefixes.
func (e *Engine) MSXCopyNames(name string) (out map[slowpath.EIDName][]byte, ok bool) {
	if e.msx == nil {
		return nil, false
	}
	_ = e.c.Do(func() { out, ok = e.msx.CopyNames(name) })
	return out, ok
}
