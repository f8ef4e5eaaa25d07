// Package regstore is the control plane's registration store, written once
// for every kind of registration: unicast EID prefixes and group names
// ("group-<G>", draft-ietf-lisp-group-mapping) at a Map-Server, (S,G)
// registrations (RFC 8378) at a Map-Server, and tree joins at an RTR
// (draft-coras-lisp-re). It does, for all of them alike:
//
//   - authentication of the Map-Register (Verify): the site's key of the
//     message's Key ID and algorithm, HMAC-SHA-1-96 or HMAC-SHA-256-128,
//     truncated or full length, compared in constant time; algorithm 0,
//     unknown keys and data of the wrong length are refused (RFC 9301 §5.6);
//   - site authorisation of every record (Sites.For: the most specific site
//     prefix, exact or accepting more-specifics), and RequireXTRID;
//   - the registrants of a key merged, told apart by xTR-ID (or source when
//     none is sent), indexed so that a refresh is one map lookup, and bounded
//     per key (ErrTooManyRegistrants);
//   - expiry (the T bit's record TTL or Config.Timeout) and withdrawal by a
//     record with TTL 0;
//   - the Map-Notify answering a register whose M bit asks (solicited: its
//     nonce echoed, signed like the register), and unsolicited Map-Notifies
//     (Notify) retransmitted with backoff until their Map-Notify-Ack (Ack:
//     nonce matched, authentication checked) or a try bound (RFC 9301 §5.7);
//   - registration events (accepted, rejected with a reason error, expired,
//     withdrawn) to a Sink.
//
// # How a role uses it
//
// The role declares its key type K and what one registrant contributes, V,
// and implements Kind[K, V]: Key reads a record's key (false: not this
// kind), Scope names the prefix its site authorisation uses, Value checks
// and copies a record's contribution, Changed rebuilds the role's merged
// answer (kept in Entry.Aux or the role's own index) and notifies
// subscribers, Confirm gives the record a solicited Map-Notify carries.
// It builds the store once:
//
//	sites, err := regstore.NewSites(cfgSites)  // or regstore.OpenSite(&mcastSite)
//	st := regstore.New(clock, sender, kind, sites, sink, regstore.Config{
//		Timeout: cfg.RegistrationTimeout,
//		Notify:  regstore.NotifyConfig{Key: mcastKey, Interval: cfg.RetryInterval, MaxTries: cfg.Retries + 1},
//	})
//
// On a Map-Register the core parses the message once and hands the role
// the parsed *wire.MapRegister and the raw bytes; the role calls
// st.Register(src, raw, reg) and maps the Result to its counters
// (errors.Is(res.Err, regstore.ErrAuth) and the like). For an unsolicited
// Map-Notify it calls st.Notify(k, dst, records); on a Map-Notify-Ack,
// st.Ack(src, raw, ack). Lookups go through st.Entry(k) or the role's own
// longest-prefix index kept by Changed.
//
// The clock, the sender and the sink are the core's (see package request
// for Clock and Sender; reqtest has fakes). The store has no goroutine and
// no package-level state; it runs on the caller's event loop. Registrants
// that send registrations (ETRs, multicast registrants, tree children) use
// package request for their retries and Verify for the Map-Notify.
package regstore
