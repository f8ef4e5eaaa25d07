package router

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// SubscribeOptions subscribes the ITR to the mappings it resolves
// (RFC 9437, docs/pubsub.md): the Map-Server then pushes every change in a
// Map-Notify instead of the ITR polling at the TTL.
type SubscribeOptions struct {
	// Enabled turns subscriptions on.
	Enabled bool `mapstructure:"enabled"`
	// IIDs are the instance-IDs subscribed to; empty means all.
	IIDs []uint32 `mapstructure:"iids"`
	// Keys verify the Map-Servers' Map-Notifies and sign the
	// Map-Notify-Acks; empty means the keys of map_servers (the key an
	// xTR shares with its Map-Server).
	Keys []slowpath.AuthKey `mapstructure:"keys"`
	// Resubscribe is the longest time between two subscribing requests
	// for a mapping in use, which renew the subscription at a Map-Server
	// that restarted (0: 5 minutes).
	Resubscribe time.Duration `mapstructure:"resubscribe"`
}

// PubSubOptions is the Map-Server's side of publish/subscribe (RFC 9437).
// Subscriptions are accepted from xTR-IDs registered with this Map-Server
// and from the subscribers listed here.
type PubSubOptions struct {
	// Subscribers are xTRs allowed to subscribe without registering here.
	Subscribers []SubscriberOptions `mapstructure:"subscribers"`
	// MaxPerSubscriber bounds one xTR-ID's subscriptions (0: 1024).
	MaxPerSubscriber int `mapstructure:"max_per_subscriber"`
	// MaxTotal bounds all subscriptions (0: 65536).
	MaxTotal int `mapstructure:"max_total"`
	// NotifyInterval is the first Map-Notify retransmission wait (0: 1 s).
	NotifyInterval time.Duration `mapstructure:"notify_interval"`
	// NotifyTries bounds the sends of one Map-Notify; a subscriber that
	// acknowledges none is dropped (0: 4).
	NotifyTries int `mapstructure:"notify_tries"`
}

// SubscriberOptions is one allowed subscriber: an rloc router by name or
// any xTR by xTR-ID, with the key its Map-Notifies are signed with.
type SubscriberOptions struct {
	// Name is an rloc router's name; its xTR-ID is derived from it.
	Name string `mapstructure:"name"`
	// XTRID is the xTR-ID as 32 hex digits, for other implementations.
	XTRID string `mapstructure:"xtr_id"`
	// Key signs the Map-Notifies to the subscriber.
	Key slowpath.AuthKey `mapstructure:"key"`
}

// XTRIDOf returns the xTR-ID a router named name sends (RFC 9301 §5.6,
// RFC 9437 §4): what a Map-Server's pubsub.subscribers[].name stands for.
func XTRIDOf(name string) wire.XTRID { return xtrID(name) }

// xtrIDOf returns the xTR-ID of s: by name or from its hex form.
func (s *SubscriberOptions) xtrIDOf(path string) (wire.XTRID, error) {
	var id wire.XTRID
	switch {
	case s.Name != "" && s.XTRID != "":
		return id, fmt.Errorf("%s: name and xtr_id both given", path)
	case s.Name != "":
		return xtrID(s.Name), nil
	}
	b, err := hex.DecodeString(s.XTRID)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%s.xtr_id: %q is not 32 hex digits", path, s.XTRID)
	}
	copy(id[:], b)
	return id, nil
}

// pubsubConfig is the Map-Server's slowpath.PubSubConfig.
func (c *Config) pubsubConfig() (slowpath.PubSubConfig, error) {
	o := &c.MapServer.PubSub
	pc := slowpath.PubSubConfig{MaxPerSubscriber: o.MaxPerSubscriber, MaxTotal: o.MaxTotal,
		NotifyInterval: o.NotifyInterval, NotifyTries: o.NotifyTries}
	for i := range o.Subscribers {
		f := fmt.Sprintf("map_server.pubsub.subscribers[%d]", i)
		id, err := o.Subscribers[i].xtrIDOf(f)
		if err != nil {
			return pc, err
		}
		pc.Subscribers = append(pc.Subscribers, slowpath.SubscriberConfig{XTRID: id, Key: o.Subscribers[i].Key})
	}
	return pc, nil
}

// subscribeConfig is the ITR's slowpath.SubscribeConfig, nil when
// subscriptions are off.
func (c *Config) subscribeConfig() *slowpath.SubscribeConfig {
	o := &c.ITR.Subscribe
	if !o.Enabled {
		return nil
	}
	sc := &slowpath.SubscribeConfig{IIDs: o.IIDs, Keys: o.Keys, SiteID: c.ETR.SiteID, Resubscribe: o.Resubscribe}
	if c.Name != "" {
		sc.XTRID = xtrID(c.Name)
	}
	if len(sc.Keys) == 0 {
		for _, ms := range c.MapServers {
			sc.Keys = append(sc.Keys, ms.Key)
		}
	}
	return sc
}

// validatePubSub checks itr.subscribe and map_server.pubsub.
func (c *Config) validatePubSub() error {
	if o := &c.ITR.Subscribe; o.Enabled {
		switch {
		case !c.Roles.resolves():
			return errors.New("itr.subscribe: only the itr, pitr and rtr roles resolve mappings")
		case c.Name == "":
			return errors.New("itr.subscribe: needs the router's name (its xTR-ID is derived from it)")
		case len(o.Keys) == 0 && len(c.MapServers) == 0:
			return errors.New("itr.subscribe.keys: no key to verify Map-Notifies with (and no map_servers)")
		}
		for i := range o.Keys {
			if err := o.Keys[i].Validate(fmt.Sprintf("itr.subscribe.keys[%d]", i)); err != nil {
				return err
			}
		}
		if o.Resubscribe < 0 {
			return errors.New("itr.subscribe.resubscribe: negative")
		}
	}
	p := &c.MapServer.PubSub
	if !c.Roles.MapServer && (len(p.Subscribers) > 0 || p.MaxPerSubscriber != 0 || p.MaxTotal != 0) {
		return errors.New("map_server.pubsub: only the map-server role keeps subscriptions")
	}
	if p.MaxPerSubscriber < 0 || p.MaxTotal < 0 || p.NotifyInterval < 0 || p.NotifyTries < 0 {
		return errors.New("map_server.pubsub: negative bound, interval or count")
	}
	pc, err := c.pubsubConfig()
	if err != nil {
		return err
	}
	for i := range pc.Subscribers {
		if err := pc.Subscribers[i].Key.Validate(fmt.Sprintf("map_server.pubsub.subscribers[%d].key", i)); err != nil {
			return err
		}
	}
	return nil
}

// SubscriptionInfo is one subscription the Map-Server holds (GET
// /v1/subscriptions).
type SubscriptionInfo struct {
	XTRID    string    `json:"xtr_id"`
	SiteID   uint64    `json:"site_id"`
	IID      uint32    `json:"iid"`
	EID      string    `json:"eid"`
	ITRRLOCs []string  `json:"itr_rlocs"`
	Notify   string    `json:"notify"`
	Since    time.Time `json:"since"`
	Renewed  time.Time `json:"renewed"`
	Notifies uint64    `json:"notifies"`
	Pending  bool      `json:"pending,omitempty"`
}

// SubscriptionsInfo is GET /v1/subscriptions: the Map-Server's
// subscriptions, its publish counters and the ITR's subscribe counters.
type SubscriptionsInfo struct {
	Subscriptions []SubscriptionInfo `json:"subscriptions"`
	MapServer     map[string]uint64  `json:"map_server,omitempty"`
	ITR           map[string]uint64  `json:"itr,omitempty"`
}

// Subscriptions lists the publish/subscribe state (RFC 9437).
func (r *Router) Subscriptions() SubscriptionsInfo {
	out := SubscriptionsInfo{Subscriptions: []SubscriptionInfo{}}
	if r.engine == nil {
		return out
	}
	for _, s := range r.engine.Subscriptions() {
		si := SubscriptionInfo{XTRID: s.XTRID.String(), SiteID: s.SiteID, IID: s.EID.IID, EID: s.EID.Prefix.String(),
			ITRRLOCs: []string{}, Notify: s.Notify.String(), Since: s.Since, Renewed: s.Renewed, Notifies: s.Notifies, Pending: s.Pending}
		for _, a := range s.ITRRLOCs {
			si.ITRRLOCs = append(si.ITRRLOCs, a.String())
		}
		out.Subscriptions = append(out.Subscriptions, si)
	}
	if r.cfg.Roles.MapServer {
		p := r.engine.PubSubStats()
		out.MapServer = map[string]uint64{"active": uint64(p.Active), "subscribed": p.Subscribed, "renewed": p.Renewed,
			"unsubscribed": p.Unsubscribed, "refused": p.Refused, "no_xtr_id": p.NoXTRID,
			"over_subscriber_bound": p.OverSubscriber, "over_total_bound": p.OverTotal,
			"notifies": p.Notifies, "retransmits": p.Retransmits, "acked": p.Acked, "gave_up": p.GaveUp,
			"lapsed": p.Lapsed, "send_errors": p.SendErrors, "ack_unknown": p.AckUnknown, "ack_bad_auth": p.AckBadAuth}
	}
	if c := r.cfg.ITR.Subscribe; c.Enabled {
		s := r.engine.SubscribeStats()
		out.ITR = map[string]uint64{"active": uint64(s.Active), "requests": s.Requests, "unsubscribes": s.Unsubscribes,
			"notifies": s.Notifies, "withdrawals": s.Withdrawals, "duplicates": s.Duplicates, "acks": s.Acks,
			"unknown": s.Unknown, "bad_auth": s.BadAuth, "rejected": s.Rejected}
	}
	return out
}

func (r *Router) apiSubscriptions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, r.Subscriptions())
}
