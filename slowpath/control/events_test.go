package control

import (
	"sync"
	"testing"
	"time"
)

// eventLog collects engine events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) { l.mu.Lock(); l.evs = append(l.evs, ev); l.mu.Unlock() }

func (l *eventLog) count(k EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func TestEventsAndSetSites(t *testing.T) {
	var log eventLog
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.Events = log.add
	ms := newEngine(t, c, nil)
	etr := newEngine(t, Config{ETR: etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "accepted event", func() bool { return log.count(EventRegistrationAccepted) >= 1 })
	bad := testKey
	bad.Secret = "wrong"
	_ = newEngine(t, Config{ETR: etrConfig(ms.Addr(), bad, mapping("10.1.3.0/24", "192.0.2.2"))}, nil)
	waitFor(t, 5*time.Second, "rejected event", func() bool { return log.count(EventRegistrationRejected) >= 1 })

	// Site a keeps 10.1.0.0/16 under a new name-preserving config: the
	// registration stays; moving the prefix to another site drops it.
	if err := ms.SetSites([]SiteConfig{siteConfig("a", "10.1.0.0/16", true), siteConfig("b", "10.9.0.0/16", false)}); err != nil {
		t.Fatal(err)
	}
	if regs := ms.Registrations(); len(regs) != 1 {
		t.Fatalf("after compatible SetSites: %d registrations", len(regs))
	}
	if err := ms.SetSites([]SiteConfig{siteConfig("b", "10.1.0.0/16", true)}); err != nil {
		t.Fatal(err)
	}
	if regs := ms.Registrations(); len(regs) != 0 {
		t.Fatalf("after moving the prefix to another site: %+v", regs)
	}
	if err := ms.SetSites([]SiteConfig{{Name: "c"}}); err == nil {
		t.Fatal("SetSites accepted a site without keys")
	}
	if err := etr.SetSites(nil); err == nil {
		t.Fatal("SetSites on an engine without Map-Server role succeeded")
	}
}
