package control

// FlushDDTReferrals empties the DDT Map-Resolver's referral cache (the
// configured roots stay: the next resolution starts at a root again) and
// returns how many learned entries it dropped; ok is false when no DDT roots
// are configured. It serves cold-cache measurements (DELETE
// /v1/ddt/referrals, docs/ddt.md).
func (e *Engine) FlushDDTReferrals() (n int, ok bool) {
	if e.mr == nil || e.mr.ReferralCache() == nil {
		return 0, false
	}
	flush := func() {
		rc := e.mr.ReferralCache()
		all := rc.All(nil)
		for i := range all {
			rc.Remove(all[i].IID, all[i].Prefix)
		}
		n = len(all)
	}
	if err := e.c.Do(flush); err != nil {
		return 0, true // closed: nothing is resolved any more
	}
	return n, true
}
