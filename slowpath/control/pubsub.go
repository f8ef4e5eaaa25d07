package control

import (
	"github.com/rloc-router/rloc/slowpath/mapserver"
	"github.com/rloc-router/rloc/slowpath/xtr"
)

// Subscription is one ITR's subscription held by the Map-Server
// (RFC 9437), as listed by Engine.Subscriptions.
type Subscription = mapserver.Subscription

// PubSubStats are the Map-Server's publish/subscribe counters.
type PubSubStats = mapserver.PubSubStats

// SubscribeStats are the ITR's publish/subscribe counters.
type SubscribeStats = xtr.SubscribeStats

// Subscriptions lists the Map-Server's subscriptions, nil without the
// Map-Server role.
func (e *Engine) Subscriptions() []Subscription {
	var out []Subscription
	if e.ms != nil {
		_ = e.c.Do(func() { out = e.ms.Subscriptions() })
	}
	return out
}

// PubSubStats returns the Map-Server's publish/subscribe counters.
func (e *Engine) PubSubStats() PubSubStats {
	var s PubSubStats
	if e.ms != nil {
		_ = e.c.Do(func() { s = e.ms.PubSubStats() })
	}
	return s
}

// SubscribeStats returns the ITR's publish/subscribe counters.
func (e *Engine) SubscribeStats() SubscribeStats {
	var s SubscribeStats
	if e.itr != nil {
		_ = e.c.Do(func() { s = e.itr.SubscribeStats() })
	}
	return s
}
