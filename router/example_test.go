package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// mapServerConfig is a Map-Server and Map-Resolver on a free loopback
// port: a control-plane-only router, which needs no interfaces and no
// privileges. Site "site1" may register 10.1.0.0/16 and prefixes inside
// it with key 1.
func mapServerConfig() router.Config {
	return router.Config{
		Name:    "ms1",
		Roles:   router.Roles{MapServer: true, MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites: []slowpath.SiteConfig{{
			Name: "site1",
			Keys: []slowpath.AuthKey{{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "site1-key"}},
			Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")},
				AcceptMoreSpecifics: true}},
		}},
	}
}

// This example starts a Map-Server from a router.Config inside a Go
// program, registers an EID prefix with it the way an ETR does (a signed
// Map-Register over UDP, answered by a Map-Notify), and reads the
// registration and the counters.
func ExampleStart() {
	r, err := router.Start(mapServerConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()

	// An ETR of site1 registers 10.1.0.0/24 at RLOC 192.0.2.1.
	reg := wire.MapRegister{WantMapNotify: true, Nonce: wire.Nonce{7},
		Auth: wire.Auth{KeyID: 1, Alg: wire.AuthHMACSHA256128,
			Data: make([]byte, wire.AuthDataLen(wire.AuthHMACSHA256128, true))},
		Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0")),
			Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true,
				Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
	msg, err := reg.AppendSigned(nil, []byte("site1-key"))
	if err != nil {
		log.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.Engine().Addr()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		log.Fatal(err)
	}
	// The Map-Notify says the registration is in place.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("answer:", wire.MessageType(buf[0]>>4) == wire.TypeMapNotify, n > 0)

	for _, reg := range r.Registrations() {
		fmt.Println("registered:", reg.Site, reg.EID, reg.RLOCs)
	}
	st := r.Stats()
	fmt.Println("registrations accepted:", st.Control["registrations_accepted"])
	// Output:
	// answer: true true
	// registered: site1 10.1.0.0/24 [192.0.2.1]
	// registrations accepted: 1
}

// This example adds a static mapping to a running router through the Go
// API: Reload takes a whole new Config and applies what may change
// without a restart (database, sites, static map-cache entries).
func ExampleRouter_Reload() {
	cfg := mapServerConfig()
	r, err := router.Start(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()

	cfg.Static = append(cfg.Static, fastpath.StaticMapping{IID: 0, Prefix: netip.MustParsePrefix("10.9.0.0/16"),
		RLOCs: []fastpath.StaticRLOC{{Addr: netip.MustParseAddr("192.0.2.9"), Priority: 1, Weight: 100}}})
	if err := r.Reload(cfg); err != nil {
		log.Fatal(err)
	}
	for _, e := range r.MapCache() {
		fmt.Println(e.IID, e.EID, e.RLOCs[0].Addr, "static:", e.Static)
	}
	fmt.Println("static entries:", r.Stats().Cache.Static)
	// Output:
	// 0 10.9.0.0/16 192.0.2.9 static: true
	// static entries: 1
}

// This example uses the management API, the HTTP+JSON API on a Unix
// socket that rlocctl speaks: it adds a map-cache entry and reads the
// counters.
func Example_managementAPI() {
	dir, err := os.MkdirTemp("", "rloc-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := mapServerConfig()
	cfg.Mgmt.Socket = filepath.Join(dir, "rlocd.sock")
	r, err := router.Start(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()

	api := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", cfg.Mgmt.Socket)
	}}}
	entry, _ := json.Marshal(router.MapCacheEntry{IID: 7, EID: "10.8.0.0/16",
		RLOCs: []router.RLOCInfo{{Addr: "192.0.2.8", Priority: 1, Weight: 100}}})
	resp, err := api.Post("http://rlocd/v1/map-cache", "application/json", bytes.NewReader(entry))
	if err != nil {
		log.Fatal(err)
	}
	var added router.MapCacheEntry
	err = json.NewDecoder(resp.Body).Decode(&added)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, added.IID, added.EID, added.Static)

	resp, err = api.Get("http://rlocd/v1/stats")
	if err != nil {
		log.Fatal(err)
	}
	var st router.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Name, "map-cache entries:", st.Cache.Entries, "static:", st.Cache.Static)
	// Output:
	// 200 OK 7 10.8.0.0/16 true
	// ms1 map-cache entries: 1 static: 1
}
