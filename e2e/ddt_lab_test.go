package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rloc-router/rloc/bench/resolve"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
)

// The DDT lab (configs/lab/ddt.yaml, docs/ddt.md "The DDT lab"): a DDT
// root, the sibling child nodes ddt-a1 and ddt-a2 (iid 0) and ddt-b (iid
// 7), Map-Servers ms1, ms2 (iid 0) and ms3 (iid 7), DDT Map-Resolvers mr1
// (domain A) and mr2 (domain B), and four sites behind xtr1..xtr4.
var (
	ddtH2 = netip.MustParseAddr("10.1.17.10") // h2: site 2, iid 0, at ms2 (h1 is 10.1.1.10 at ms1)
	ddtH4 = netip.MustParseAddr("10.7.2.10")  // h4: site 4, iid 7, at ms3 (h3 is 10.7.1.10)
	ddtMR = map[string]netip.AddrPort{
		"mr1": netip.MustParseAddrPort("192.0.2.2:4342"),
		"mr2": netip.MustParseAddrPort("198.51.100.2:4342"),
	}
)

// newDDTLab brings up the DDT lab with the delays of the file, starts rlocd
// in every node whose role names a configuration (configs/ddt/, plus a
// management socket and debug logs; edit, when given, changes each one
// first) and waits until the four sites are registered.
func newDDTLab(t testing.TB, edit ...ddtEdit) *network {
	t.Helper()
	n := newLabNetwork(t, "../configs/lab/ddt.yaml", "ddt")
	for _, node := range n.lab.Topology().Nodes {
		if cf, _ := node.Role["rlocd"].(string); node.Role["kind"] == "rlocd" && cf != "" {
			n.start(node.Name, ddtConfig(t, node.Name, edit...))
		}
	}
	for ms, want := range map[string]int{"ms1": 1, "ms2": 1, "ms3": 2} {
		n.waitFor(15*time.Second, ms+"'s registrations", func() bool {
			var r []router.RegistrationInfo
			return n.get(ms, "/v1/registrations", &r) == nil && len(r) == want
		})
	}
	return n
}

// ddtEdit changes the configuration of a node of the DDT lab (decoded
// YAML) before it starts.
type ddtEdit func(node string, cfg map[string]any)

// ddtConfig is node's configuration, configs/ddt/<node>.yaml, as it is
// without edits, else decoded, edited and encoded again.
func ddtConfig(t testing.TB, node string, edit ...ddtEdit) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "ddt", node+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(edit) == 0 {
		return string(b)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	for _, e := range edit {
		e(node, cfg)
	}
	if b, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ddtKeyPair writes a fresh 2048-bit RSA key pair into dir: name.pem (the
// signer's, PKCS #8) and name.pub.pem (the resolvers', PKIX).
func ddtKeyPair(t testing.TB, dir, name string) (priv, pub string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
	for f, blk := range map[string]*pem.Block{priv: {Type: "PRIVATE KEY", Bytes: p8}, pub: {Type: "PUBLIC KEY", Bytes: pk}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return priv, pub
}

// ddtSigned signs the DDT lab's referrals (RFC 8111 §6.4.1): the DDT nodes
// and the Map-Servers sign with the private key priv, and mr1 verifies
// every level of domain A with the public key pub: the root's (the key of
// 0.0.0.0/0), the child nodes' (10.1.0.0/16), ms1's (10.1.0.0/20) and
// ms2's (10.1.16.0/20). mr2 has no keys: domain B is not checked.
func ddtSigned(priv, pub string) ddtEdit {
	section := func(cfg map[string]any, key string) map[string]any {
		m, _ := cfg[key].(map[string]any)
		if m == nil {
			m = map[string]any{}
			cfg[key] = m
		}
		return m
	}
	return func(node string, cfg map[string]any) {
		signing := map[string]any{"key_file": priv}
		switch node {
		case "root", "ddt-a1", "ddt-a2", "ddt-b":
			section(cfg, "ddt")["signing"] = signing
		case "ms1", "ms2", "ms3":
			section(section(cfg, "map_server"), "ddt")["signing"] = signing
		case "mr1":
			var keys []any
			for _, p := range []string{"0.0.0.0/0", "10.1.0.0/16", "10.1.0.0/20", "10.1.16.0/20"} {
				keys = append(keys, map[string]any{"iid": 0, "eid": p, "key_file": pub})
			}
			section(cfg, "map_resolver")["ddt_keys"] = keys
		}
	}
}

// ddtReferrals is a DDT Map-Resolver's referral cache and counters.
func (n *network) ddtReferrals(mr string) router.DDTResolverInfo {
	n.t.Helper()
	var l router.DDTResolverInfo
	if err := n.get(mr, "/v1/ddt/referrals", &l); err != nil {
		n.t.Fatalf("%s referrals: %v", mr, err)
	}
	return l
}

// ddtNodeStats is a DDT node's counters of referrals sent.
func (n *network) ddtNodeStats(node string) router.DDTInfo {
	n.t.Helper()
	var l router.DDTInfo
	if err := n.get(node, "/v1/ddt/delegations", &l); err != nil {
		n.t.Fatalf("%s delegations: %v", node, err)
	}
	return l
}

// flushReferrals empties mr's referral cache.
func (n *network) flushReferrals(mr string) error {
	var out map[string]int
	return n.do(mr, "DELETE", "/v1/ddt/referrals", nil, &out)
}

// resolver opens a resolve.Client in node's namespace (on the address the
// kernel picks towards the Map-Resolver mr and an ephemeral port, as lig
// does) towards mr, closed at the end of the test.
func (n *network) resolver(node, mr string) *resolve.Client {
	n.t.Helper()
	var c *resolve.Client
	err := n.lab.Node(node).Do(func() (err error) {
		c, err = resolve.Dial(ddtMR[mr], netip.AddrPort{})
		return err
	})
	if err != nil {
		n.t.Fatalf("resolver in %s: %v", node, err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// negativeAtITR pings eid once from host (its packet is held, then
// dropped or sent natively) and checks that the ITR itr installs the
// negative map-cache entry prefix with action for it (iid 0).
func (n *network) negativeAtITR(t *testing.T, host, itr string, eid netip.Addr, prefix, action string) {
	t.Helper()
	_, _ = n.lab.Ping(host, eid, 1, 300*time.Millisecond)
	var e router.MapCacheEntry
	testkit.WaitFor(t, itr+"'s negative entry for "+eid.String(), func() error {
		for _, e = range n.mapCache(itr) {
			if p, err := netip.ParsePrefix(e.EID); err == nil && e.IID == 0 && e.Negative && p.Contains(eid) {
				return nil
			}
		}
		return fmt.Errorf("no negative entry covers %v", eid)
	})
	if e.EID != prefix || e.Action != action {
		t.Errorf("%s's entry for %v: %+v, want %s %s", itr, eid, e, prefix, action)
	}
}

// referralString is a cache entry as the tests compare it.
func referralString(r router.DDTReferralInfo) string {
	return fmt.Sprintf("[%d]%s %s %v", r.IID, r.EID, r.Type, r.Targets)
}
