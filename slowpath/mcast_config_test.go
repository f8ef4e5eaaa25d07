package slowpath

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSuppressHoldConfig: SuppressHold defaults to DefaultSuppressHold and
// must not be negative.
func TestSuppressHoldConfig(t *testing.T) {
	top := &Config{}
	c := MulticastConfig{Underlay: &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16")}}
	if got := c.WithDefaults(top).Underlay.SuppressHold; got != DefaultSuppressHold {
		t.Errorf("default hold %v, want %v", got, DefaultSuppressHold)
	}
	c.Underlay.SuppressHold = 7 * time.Second
	if got := c.WithDefaults(top).Underlay.SuppressHold; got != 7*time.Second {
		t.Errorf("hold %v, want 7s", got)
	}
	c.Underlay.SuppressHold = -time.Second
	if err := c.validate(top); err == nil || !strings.Contains(err.Error(), "suppress_hold") {
		t.Errorf("negative hold: %v", err)
	}
}
