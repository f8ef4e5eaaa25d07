package control

import (
	"errors"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/cpnp"
	"github.com/rloc-router/rloc/slowpath/discovery"
	"github.com/rloc-router/rloc/slowpath/msx"
)

// CPNPListing is the negotiation's state, as Engine.CPNP returns it.
type CPNPListing = cpnp.Listing

// buildCPNP makes the negotiation role (cpnp section) over the
// interconnect it provisions, building the interconnect without
// agreements when no msx section made one.
func (e *Engine) buildCPNP() error {
	if e.cfg.CPNP == nil {
		return nil
	}
	if e.msx == nil {
		xc := slowpath.MSXConfig{}.WithDefaults()
		e.msx = msx.New(e.c, &xc)
	}
	var err error
	e.cpnp, err = cpnp.NewRole(e.c, e.cfg.CPNP, e.msx)
	return err
}

// watchBGPForCPNP has BGP discovery drive the negotiation: a prefix learned
// with a contact makes the customer order from it, its withdrawal
// withdraws the agreement (docs/cpnp.md).
func (e *Engine) watchBGPForCPNP() {
	if e.cpnp == nil || e.bgpDisc == nil {
		return
	}
	e.bgpDisc.Watch(func(en discovery.BGPEntry, gone bool) {
		_ = e.c.Do(func() {
			if gone {
				e.cpnp.Unlearned(en.Prefix, en.Contact)
			} else {
				e.cpnp.Learned(en.Prefix, en.Contact)
			}
		})
	})
}

// CPNP returns the negotiation's state; ok is false without a cpnp
// section.
func (e *Engine) CPNP() (l CPNPListing, ok bool) {
	if e.cpnp == nil {
		return l, false
	}
	if err := e.c.Do(func() { l = e.cpnp.Listing() }); err != nil {
		l = e.cpnp.Listing() // closed: nothing changes any more
	}
	return l, true
}

// CPNPWithdraw withdraws the agreed agreement customerID with the peer at
// peer (address:port).
func (e *Engine) CPNPWithdraw(peer, customerID string) error {
	if e.cpnp == nil {
		return errors.New("cpnp: not configured")
	}
	var err error
	if derr := e.c.Do(func() { err = e.cpnp.Withdraw(peer, customerID) }); derr != nil {
		return derr
	}
	return err
}
