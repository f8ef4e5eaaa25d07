package cache

import (
	"math/rand/v2"
	"net/netip"
)

// genV4 returns n distinct IPv4 prefixes with a realistic length mix:
// about 80% /24, 12% /16-/22, 8% /32.
func genV4(r *rand.Rand, n int) []netip.Prefix {
	seen := make(map[netip.Prefix]struct{}, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		var bits int
		switch x := r.IntN(100); {
		case x < 80:
			bits = 24
		case x < 92:
			bits = 16 + r.IntN(7)
		default:
			bits = 32
		}
		v := r.Uint32()
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		p := netip.PrefixFrom(a, bits).Masked()
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

// genV6 returns n distinct IPv6 prefixes: mostly /48 under 2000::/3, some
// /32-/44, some /56-/64 and a few /128.
func genV6(r *rand.Rand, n int) []netip.Prefix {
	seen := make(map[netip.Prefix]struct{}, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		var bits int
		switch x := r.IntN(100); {
		case x < 70:
			bits = 48
		case x < 85:
			bits = 32 + r.IntN(13)
		case x < 97:
			bits = 56 + r.IntN(9)
		default:
			bits = 128
		}
		var b [16]byte
		hi, lo := r.Uint64(), r.Uint64()
		for i := range 8 {
			b[i] = byte(hi >> (56 - 8*i))
			b[8+i] = byte(lo >> (56 - 8*i))
		}
		b[0] = 0x20 | (b[0] & 0x1f)
		p := netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

// hitAddr returns a random address inside p.
func hitAddr(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 12
	}
	bits := p.Bits()
	for i := bits; i < p.Addr().BitLen(); i++ {
		if r.IntN(2) == 1 {
			b[off+i/8] |= 0x80 >> (i % 8)
		}
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// randAddr returns a uniformly random address of the family of p.
func randAddr(r *rand.Rand, v4 bool) netip.Addr {
	if v4 {
		v := r.Uint32()
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[0] = 0x20 | (b[0] & 0x1f)
	return netip.AddrFrom16(b)
}
