package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestAuthVariants: real daemons on the demo lab, one Map-Server serving
// two sites keyed for two kinds of peer. xtr1 registers as OOR 1.3 does:
// HMAC-SHA-1, the full 20-byte HMAC, the old 16-bit Key ID layout (Key ID
// 0), the whole message covered. xtr2 registers RFC-strict: HMAC-SHA-256
// truncated to 16 bytes, Key ID 7 in RFC 9301's 8+8-bit layout, the HMAC
// through the last record, site-ID 9 (the site requires an xTR-ID). Both are accepted and confirmed, and the Map-Server
// counts the variants it verified. Then xtr1 restarts with a wrong secret:
// the Map-Server refuses it and xtr1 warns, naming the Map-Server.
func TestAuthVariants(t *testing.T) {
	n := newNetwork(t)
	n.start("msmr", `name: msmr
roles: [map-server, map-resolver]
sites:
  - name: site1
    keys: [{id: 0, alg: hmac-sha1-96, secret: oor-style, layout: legacy}]
    prefixes: [{eid: 10.1.0.0/24}, {eid: "2001:db8:1::/64"}]
  - name: site2
    keys: [{id: 7, alg: hmac-sha256-128, secret: rfc-strict, hmac_length: truncated, coverage: records}]
    prefixes: [{eid: 10.2.0.0/24}, {eid: "2001:db8:2::/64"}]
    require_xtr_id: true
`)
	xtr1 := func(secret string) string {
		return strings.Replace(xtrYAML("xtr1", "1", "", "0s"),
			"key: {id: 1, secret: }",
			"key: {id: 0, alg: hmac-sha1-96, secret: "+secret+", layout: legacy, hmac_length: full, coverage: message}", 1)
	}
	x2 := strings.Replace(xtrYAML("xtr2", "2", "rfc-strict", "0s"),
		"key: {id: 1, secret: rfc-strict}",
		"key: {id: 7, alg: hmac-sha256-128, secret: rfc-strict, layout: rfc9301, hmac_length: truncated, coverage: records}", 1)
	x2 = strings.Replace(x2, "etr: {register_interval: 1s}", "etr: {register_interval: 1s, site_id: 9}", 1)
	if !strings.Contains(xtr1("s"), "layout: legacy") || !strings.Contains(x2, "site_id: 9") || !strings.Contains(x2, "id: 7") {
		t.Fatal("the xTR configurations were not rewritten; xtrYAML changed")
	}
	n.start("xtr1", xtr1("oor-style"))
	n.start("xtr2", x2)
	n.waitFor(15*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
	for _, x := range []string{"xtr1", "xtr2"} {
		n.waitFor(10*time.Second, x+"'s registration confirmed", func() bool { return n.stats(x).Control["register_notified"] >= 1 })
	}
	// Both send an xTR-ID: xtr1's whole-message HMAC covers it, xtr2's
	// records-only HMAC does not.
	for _, r := range n.registrations() {
		if r.XTRID == "" || (r.Site == "site2") != (r.SiteID == 9) {
			t.Errorf("registration %+v: want an xTR-ID, and site-ID 9 from xtr2", r)
		}
	}
	c := n.stats("msmr").Control
	for _, k := range []string{"auth_hmac_sha1_96", "auth_hmac_sha256_128", "auth_full", "auth_truncated",
		"auth_coverage_message", "auth_coverage_records", "auth_key_id_set", "auth_key_id_zero"} {
		if c[k] == 0 {
			t.Errorf("msmr counter %s = 0: %v", k, c)
		}
	}
	if bad := msgCount(n.stats("msmr"), "map-register").BadAuth; bad != 0 {
		t.Errorf("msmr refused %d Map-Registers of correctly keyed ETRs", bad)
	}

	// A wrong secret: refused, and the ETR says so once, naming the
	// Map-Server and what it sent.
	n.stop("xtr1", true)
	n.start("xtr1", xtr1("not-the-secret"))
	n.waitFor(10*time.Second, "msmr to refuse xtr1", func() bool { return msgCount(n.stats("msmr"), "map-register").BadAuth >= 1 })
	const warn = "registration not confirmed"
	var line string
	n.waitFor(10*time.Second, "xtr1's warning", func() bool {
		b, _ := os.ReadFile(n.logFile("xtr1"))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, warn) {
				line = l
				return true
			}
		}
		return false
	})
	for _, want := range []string{"192.0.2.100", "key_id=0", "alg=hmac-sha1-96", "hmac_length=full", "layout=legacy", "coverage=message"} {
		if !strings.Contains(line, want) {
			t.Errorf("xtr1's warning lacks %q: %s", want, line)
		}
	}
	b, _ := os.ReadFile(n.logFile("msmr"))
	if !strings.Contains(string(b), "Map-Register refused") {
		t.Error("msmr did not log the refusal")
	}
}
