package gre

import (
	"net/netip"
	"strings"
	"testing"
)

func testConfig() Config {
	return Config{Name: "alt0", Local: netip.MustParseAddr("192.0.2.1"), Tunnels: []TunnelConfig{
		{Remote: netip.MustParseAddr("192.0.2.2"), Inner: netip.MustParsePrefix("10.255.0.0/31"), Peer: netip.MustParseAddr("10.255.0.1")},
		{Remote: netip.MustParseAddr("192.0.2.3"), Inner: netip.MustParsePrefix("10.255.0.2/31"), Peer: netip.MustParseAddr("10.255.0.3"),
			Checksum: true, UseKey: true, Key: 42},
	}}
}

func TestValidate(t *testing.T) {
	good := testConfig()
	if err := good.Validate("alt.gre"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Name = "" }, "alt.gre.name"},
		{func(c *Config) { c.Name = "a-very-long-name-indeed" }, "alt.gre.name"},
		{func(c *Config) { c.Local = netip.Addr{} }, "alt.gre.local"},
		{func(c *Config) { c.Tunnels[1].Remote = c.Tunnels[0].Remote }, "alt.gre.tunnels[1].remote"},
		{func(c *Config) { c.Tunnels[0].Remote = netip.MustParseAddr("2001:db8::1") }, "alt.gre.tunnels[0].remote"},
		{func(c *Config) { c.Tunnels[0].Inner = netip.MustParsePrefix("10.255.0.0/24") }, "alt.gre.tunnels[0].inner"},
		{func(c *Config) { c.Tunnels[0].Peer = netip.MustParseAddr("10.255.0.7") }, "alt.gre.tunnels[0].peer"},
		{func(c *Config) { c.Tunnels[0].Peer = netip.MustParseAddr("10.255.0.0") }, "alt.gre.tunnels[0].peer"},
		{func(c *Config) { c.MTU = 100 }, "alt.gre.mtu"},
		{func(c *Config) { c.PointToPoint = true }, "alt.gre.tunnels"},
	} {
		cfg := testConfig()
		c.edit(&cfg)
		err := cfg.Validate("alt.gre")
		if err == nil || !strings.HasPrefix(err.Error(), c.want+":") {
			t.Errorf("want an error at %s, got %v", c.want, err)
		}
	}
}

// TestReceiveDrops feeds bad GRE packets to the receive path (no sockets:
// a device's tables only) and checks each is dropped under its reason,
// and that a good one not addressed to the device goes to the handler.
func TestReceiveDrops(t *testing.T) {
	d := newDevice(testConfig())
	plain, keyed := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	// An inner packet for an EID, not for the tunnel addresses.
	alt := ipv4Packet()
	copy(alt[16:], []byte{192, 168, 7, 1})
	var handled int
	d.SetHandler(func(tn *Tunnel, pkt []byte) bool {
		if tn.Config.Remote != plain && tn.Config.Remote != keyed {
			t.Errorf("handler got tunnel %v", tn.Config.Remote)
		}
		handled++
		return true
	})
	enc := func(h Header, p []byte) []byte { return Append(nil, &h, p) }
	for _, c := range []struct {
		name string
		src  netip.Addr
		b    []byte
		want int
	}{
		{"unknown protocol", plain, enc(Header{Protocol: 0x6558}, alt), DropProtocol},
		{"key not negotiated", plain, enc(Header{Protocol: ProtoIPv4, HasKey: true, Key: 1}, alt), DropKeyUnasked},
		{"checksum not negotiated", plain, enc(Header{Protocol: ProtoIPv4, Checksum: true}, alt), DropChecksumUnasked},
		{"truncated", plain, []byte{0x00, 0x00, 0x08}, DropTruncated},
		{"truncated checksum", keyed, []byte{0xa0, 0x00, 0x08, 0x00, 0, 0}, DropTruncated},
		{"sequence", plain, []byte{0x10, 0x00, 0x08, 0x00, 0, 0, 0, 1}, DropSequence},
		{"version", plain, []byte{0x00, 0x01, 0x08, 0x00}, DropVersion},
		{"wrong key", keyed, enc(Header{Protocol: ProtoIPv4, Checksum: true, HasKey: true, Key: 43}, alt), DropKeyMismatch},
		{"no key", keyed, enc(Header{Protocol: ProtoIPv4, Checksum: true}, alt), DropKeyMismatch},
		{"no checksum", keyed, enc(Header{Protocol: ProtoIPv4, HasKey: true, Key: 42}, alt), DropChecksumMissing},
		{"unknown peer", netip.MustParseAddr("192.0.2.9"), enc(Header{Protocol: ProtoIPv4}, alt), DropUnknownPeer},
		{"inner not IPv4", plain, enc(Header{Protocol: ProtoIPv4}, []byte{0x60, 0, 0, 0}), DropBadInner},
		{"inner IPv6 as IPv4", plain, enc(Header{Protocol: ProtoIPv6}, alt), DropBadInner},
	} {
		before := d.Dropped(c.want)
		d.receive(c.src, c.b)
		if d.Dropped(c.want) != before+1 {
			t.Errorf("%s: not counted as %s (stats %v)", c.name, DropName(c.want), d.Stats().Dropped)
		}
	}
	if handled != 0 {
		t.Fatalf("handler got %d bad packets", handled)
	}
	d.receive(plain, enc(Header{Protocol: ProtoIPv4}, alt))
	d.receive(keyed, enc(Header{Protocol: ProtoIPv4, Checksum: true, HasKey: true, Key: 42}, alt))
	if handled != 2 {
		t.Fatalf("handler got %d good packets, want 2", handled)
	}
	d.SetHandler(nil)
	d.receive(plain, enc(Header{Protocol: ProtoIPv4}, alt))
	if d.Dropped(DropNotLocal) != 1 {
		t.Fatalf("no handler: not-local %d, want 1", d.Dropped(DropNotLocal))
	}
	st := d.Stats()
	if st.Tunnels[0].RxPackets != 2 || st.Tunnels[1].RxPackets != 1 {
		t.Fatalf("rx counters %+v", st.Tunnels)
	}
}
