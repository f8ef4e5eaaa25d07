package replicate

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Overlay group to underlay group by hashing (draft-ietf-lisp-group-mapping,
// the hash method): every ETR that gets an IGMP/MLD report for (S-EID,G-EID)
// or (*,G-EID) computes the same underlay group (G-RLOC) without asking
// anyone, so all of them join the same group and the ITR sends one copy.
//
// The computation, which every implementation must repeat exactly:
//
//  1. input: the S-EID address bytes followed by the G-EID address bytes
//     (4+4 bytes for IPv4, 16+16 for IPv6, network byte order), or the
//     G-EID bytes alone for (*,G);
//  2. digest: SHA-256 of the input (FIPS 180-4);
//  3. the underlay range is a multicast prefix R with h host bits (32 or
//     128 minus its length); the G-RLOC is R's address with its host bits
//     replaced by the low-order h bits of the digest read as a 256-bit
//     big-endian number (the last bytes of the digest).
//
// The overlay and underlay families are independent: an IPv6 group may map
// into an IPv4 range and the other way round.

// Errors of the group-mapping functions.
var (
	// ErrNotGroup: an address that must be a multicast group is not.
	ErrNotGroup = errors.New("replicate: not a multicast group address")
	// ErrBadRange: the underlay group range is not a usable multicast prefix.
	ErrBadRange = errors.New("replicate: bad underlay group range")
)

// GroupDigest returns the SHA-256 digest over (S-EID, G-EID), or over G-EID
// alone when src is invalid or unspecified ((*,G)). IPv4-mapped addresses
// count as IPv4. It fails when group is not a multicast address or src is
// of another family.
func GroupDigest(src, group netip.Addr) ([32]byte, error) {
	group = group.Unmap()
	if !group.IsMulticast() {
		return [32]byte{}, fmt.Errorf("%w: G-EID %s", ErrNotGroup, group)
	}
	var in [32]byte
	n := 0
	if src.IsValid() && !src.IsUnspecified() {
		src = src.Unmap()
		if src.Is4() != group.Is4() {
			return [32]byte{}, fmt.Errorf("%w: S-EID %s and G-EID %s of different families", ErrNotGroup, src, group)
		}
		n += copy(in[n:], src.AsSlice())
	}
	n += copy(in[n:], group.AsSlice())
	return sha256.Sum256(in[:n]), nil
}

// CheckRange says whether rng can serve as an underlay group range: a valid
// prefix inside the multicast space (224.0.0.0/4, ff00::/8) that excludes
// link-local groups (224.0.0.0/24) and, for IPv6, fixes a scope (length at
// least 16) wider than link-local.
func CheckRange(rng netip.Prefix) error {
	if !rng.IsValid() {
		return fmt.Errorf("%w: invalid prefix", ErrBadRange)
	}
	a := rng.Addr()
	if a.Is4In6() {
		return fmt.Errorf("%w: %s is IPv4-mapped", ErrBadRange, rng)
	}
	if a.Is4() {
		switch {
		case rng.Bits() < 4 || !a.IsMulticast():
			return fmt.Errorf("%w: %s is not inside 224.0.0.0/4", ErrBadRange, rng)
		case rng.Overlaps(netip.MustParsePrefix("224.0.0.0/24")):
			return fmt.Errorf("%w: %s includes the link-local groups 224.0.0.0/24", ErrBadRange, rng)
		}
		return nil
	}
	switch {
	case rng.Bits() < 8 || !a.IsMulticast():
		return fmt.Errorf("%w: %s is not inside ff00::/8", ErrBadRange, rng)
	case rng.Bits() < 16:
		return fmt.Errorf("%w: %s does not fix the scope (needs a length of at least 16)", ErrBadRange, rng)
	case a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() || a.As16()[1]&0x0f == 0:
		return fmt.Errorf("%w: %s has interface-local, link-local or reserved scope", ErrBadRange, rng)
	}
	return nil
}

// HashGroup returns the underlay group (G-RLOC) for (S-EID, G-EID), or for
// (*,G-EID) when src is invalid or unspecified, inside the underlay range
// rng, by the computation described above.
func HashGroup(src, group netip.Addr, rng netip.Prefix) (netip.Addr, error) {
	if err := CheckRange(rng); err != nil {
		return netip.Addr{}, err
	}
	d, err := GroupDigest(src, group)
	if err != nil {
		return netip.Addr{}, err
	}
	return placeInRange(d[:], rng), nil
}

// placeInRange replaces the host bits of rng with the low-order bits of d.
func placeInRange(d []byte, rng netip.Prefix) netip.Addr {
	rng = rng.Masked()
	if rng.Addr().Is4() {
		host := binary.BigEndian.Uint32(d[len(d)-4:])
		mask := uint32(0)
		if h := 32 - rng.Bits(); h > 0 {
			mask = ^uint32(0) >> (32 - h)
		}
		base := rng.Addr().As4()
		v := binary.BigEndian.Uint32(base[:]) | host&mask
		var out [4]byte
		binary.BigEndian.PutUint32(out[:], v)
		return netip.AddrFrom4(out)
	}
	out := rng.Addr().As16()
	tail := d[len(d)-16:]
	for i := range 16 {
		// Bits of byte i that are host bits.
		bit0 := i * 8
		var m byte
		switch {
		case bit0 >= rng.Bits():
			m = 0xff
		case bit0+8 > rng.Bits():
			m = 0xff >> (rng.Bits() - bit0)
		}
		out[i] |= tail[i] & m
	}
	return netip.AddrFrom16(out)
}

// PickGroup chooses one of n underlay groups (a 1:many mapping) for (S-EID,
// G-EID) or (*,G-EID), the same way on every ETR: the digest's last 8 bytes,
// big-endian, modulo n. It returns -1 when n < 1 or the addresses are
// refused by GroupDigest.
func PickGroup(src, group netip.Addr, n int) int {
	if n < 1 {
		return -1
	}
	d, err := GroupDigest(src, group)
	if err != nil {
		return -1
	}
	return int(binary.BigEndian.Uint64(d[24:]) % uint64(n))
}
