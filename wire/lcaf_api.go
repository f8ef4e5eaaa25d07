package wire

import (
	"net/netip"
	"strconv"
	"strings"
)

// SGAddress returns the multicast-info LCAF (RFC 8060 §4.5) that names the
// (S,G) or (*,G) multicast EID in instance iid. A source that is the zero
// Prefix or has mask length 0 gives (*,G): the source is then the
// unspecified address of the group's family with mask length 0. Both
// prefixes are masked. SGAddress returns the zero Address when group is not
// a valid prefix or the source is of another family.
func SGAddress(iid uint32, src, group netip.Prefix) Address {
	if !group.IsValid() {
		return Address{}
	}
	g := group.Masked()
	var s netip.Prefix
	if !src.IsValid() || src.Bits() == 0 {
		s = netip.PrefixFrom(unspecified(g.Addr()), 0)
	} else {
		if src.Addr().Is4() != g.Addr().Is4() {
			return Address{}
		}
		s = src.Masked()
	}
	return Address{AFI: AFILCAF, LCAF: LCAF{
		Type: LCAFMcastInfo, IID: iid,
		SrcMaskLen: uint8(s.Bits()), DstMaskLen: uint8(g.Bits()),
		Addrs: []Address{IPAddress(s.Addr()), IPAddress(g.Addr())},
	}}
}

func unspecified(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// SG returns the instance-ID, source and group of a multicast-info LCAF
// (RFC 8060 §4.5). For (*,G) src has mask length 0; a source sent as AFI 0
// is reported as the unspecified address of the group's family. ok is false
// when a is not a multicast-info LCAF with IP addresses of one family and
// mask lengths that fit them.
func (a *Address) SG() (iid uint32, src, group netip.Prefix, ok bool) {
	l := &a.LCAF
	if a.AFI != AFILCAF || l.Type != LCAFMcastInfo || len(l.Addrs) != 2 {
		return 0, src, group, false
	}
	s, g := &l.Addrs[0], &l.Addrs[1]
	if g.AFI != AFIIPv4 && g.AFI != AFIIPv6 {
		return 0, src, group, false
	}
	group, err := g.IP.Prefix(int(l.DstMaskLen))
	if err != nil {
		return 0, netip.Prefix{}, netip.Prefix{}, false
	}
	switch {
	case s.AFI == AFINone && l.SrcMaskLen == 0:
		src = netip.PrefixFrom(unspecified(g.IP), 0)
	case s.AFI == g.AFI:
		if src, err = s.IP.Prefix(int(l.SrcMaskLen)); err != nil {
			return 0, netip.Prefix{}, netip.Prefix{}, false
		}
	default:
		return 0, netip.Prefix{}, netip.Prefix{}, false
	}
	return l.IID, src, group, true
}

// SrcDstAddress returns the source/dest-key LCAF (RFC 8060 §4.8) for the
// pair of prefixes, both masked. It returns the zero Address when either
// prefix is invalid.
func SrcDstAddress(src, dst netip.Prefix) Address {
	if !src.IsValid() || !dst.IsValid() {
		return Address{}
	}
	s, d := src.Masked(), dst.Masked()
	return Address{AFI: AFILCAF, LCAF: LCAF{
		Type: LCAFSrcDst, SrcMaskLen: uint8(s.Bits()), DstMaskLen: uint8(d.Bits()),
		Addrs: []Address{IPAddress(s.Addr()), IPAddress(d.Addr())},
	}}
}

// SrcDst returns the instance-ID and the two prefixes of a source/dest-key
// LCAF (RFC 8060 §4.8). The LCAF may sit inside an instance-ID LCAF, or its
// addresses may be instance-ID LCAFs themselves; iid is the outer one if
// present, else the source's. ok is false when a is not such an LCAF of IP
// addresses.
func (a *Address) SrcDst() (iid uint32, src, dst netip.Prefix, ok bool) {
	iid, in, ok := a.Unwrap()
	if !ok || in.AFI != AFILCAF || in.LCAF.Type != LCAFSrcDst || len(in.LCAF.Addrs) != 2 {
		return 0, src, dst, false
	}
	l := &in.LCAF
	siid, src, ok1 := l.Addrs[0].Prefix(l.SrcMaskLen)
	_, dst, ok2 := l.Addrs[1].Prefix(l.DstMaskLen)
	if !ok1 || !ok2 {
		return 0, netip.Prefix{}, netip.Prefix{}, false
	}
	if in == a {
		iid = siid
	}
	return iid, src, dst, true
}

// RLEAddress returns a replication-list LCAF (RFC 8060 §4.9) with a copy of
// nodes.
func RLEAddress(nodes ...RLENode) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFRLE, RLE: append([]RLENode(nil), nodes...)}}
}

// RLENodes returns the entries of a replication-list LCAF (RFC 8060 §4.9),
// possibly inside an instance-ID LCAF. The slice aliases a. ok is false when
// a is not an RLE.
func (a *Address) RLENodes() (nodes []RLENode, ok bool) {
	_, in, ok := a.Unwrap()
	if !ok || in.AFI != AFILCAF || in.LCAF.Type != LCAFRLE {
		return nil, false
	}
	return in.LCAF.RLE, true
}

// ELPAddress returns an explicit-locator-path LCAF (RFC 8060 §4.6) with a
// copy of hops.
func ELPAddress(hops ...ELPHop) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFELP, ELP: append([]ELPHop(nil), hops...)}}
}

// AFIListAddress returns an AFI-list LCAF (RFC 8060 §4.1) with a copy of
// addrs.
func AFIListAddress(addrs ...Address) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFAFIList, Addrs: append([]Address(nil), addrs...)}}
}

// NATAddress returns a NAT-traversal LCAF (RFC 8060 §4.4): the Map-Server and
// ETR UDP ports, the Global ETR RLOC, the MS RLOC, the Private ETR RLOC and
// the RTR RLOCs. Any address may be the zero Address (AFI 0).
func NATAddress(msPort, etrPort uint16, globalETR, ms, privateETR Address, rtrs ...Address) Address {
	addrs := make([]Address, 0, 3+len(rtrs))
	addrs = append(addrs, globalETR, ms, privateETR)
	addrs = append(addrs, rtrs...)
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFNATT, MSPort: msPort, ETRPort: etrPort, Addrs: addrs}}
}

// KVAddress returns a key/value address-pair LCAF (RFC 8060 §4.10.2).
func KVAddress(key, value Address) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFKeyValue, Addrs: []Address{key, value}}}
}

// ASAddress returns an AS-number LCAF (RFC 8060 §4.1) around addr.
func ASAddress(asn uint32, addr Address) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFASNumber, ASN: asn, Addrs: []Address{addr}}}
}

// GeoAddress returns a geo-coordinates LCAF (RFC 8060 §4.3) around addr.
func GeoAddress(g Geo, addr Address) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFGeo, Geo: g, Addrs: []Address{addr}}}
}

// JSONAddress returns a JSON LCAF (RFC 8060 §4.10.1) holding text, with the
// B bit when binary is set, followed by addr (the zero Address encodes the
// AFI 0 that stands for "no address").
func JSONAddress(text []byte, binary bool, addr Address) Address {
	a := Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFJSON, Raw: append([]byte(nil), text...), Addrs: []Address{addr}}}
	if binary {
		a.LCAF.Rsvd2 = JSONBinary
	}
	return a
}

// SecurityKeyAddress returns a security-key LCAF (RFC 8060 §4.7) with key
// (its key material slices are shared, not copied) followed by the locator
// addr.
func SecurityKeyAddress(key SecurityKey, addr Address) Address {
	return Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFSecKey, Key: key, Addrs: []Address{addr}}}
}

// String formats the LCAF for logs:
//
//	[5]10.0.0.1                  instance-ID
//	[5](10.0.0.1,239.1.1.1)      multicast-info (S,G); (*,G) as [5](*,239.1.1.1)
//	rle{0:192.0.2.1,128:192.0.2.9'etr-a'}   RLE, level:address, appended name quoted
//	elp{192.0.2.1,192.0.2.2/LPS} ELP with the hop flags that are set
//	(10.0.0.0/8->10.9.0.0/16)    source/dest key
//	afi-list{a,b}, as64500:a, kv{k=v}, json{...}, nat{...}, seckey{...}, geo(...)
func (l LCAF) String() string {
	var sb strings.Builder
	l.format(&sb)
	return sb.String()
}

// format writes the LCAF as String describes, one method per type with
// more than a line to write.
func (l *LCAF) format(sb *strings.Builder) {
	switch l.Type {
	case LCAFInstanceID:
		sb.WriteString("[" + strconv.FormatUint(uint64(l.IID), 10) + "]")
		if len(l.Addrs) == 1 {
			l.Addrs[0].format(sb)
		}
	case LCAFMcastInfo:
		l.formatMcastInfo(sb)
	case LCAFSrcDst:
		sb.WriteByte('(')
		if len(l.Addrs) == 2 {
			formatMasked(sb, &l.Addrs[0], l.SrcMaskLen)
			sb.WriteString("->")
			formatMasked(sb, &l.Addrs[1], l.DstMaskLen)
		}
		sb.WriteByte(')')
	case LCAFRLE:
		l.formatRLE(sb)
	case LCAFELP:
		l.formatELP(sb)
	case LCAFAFIList:
		sb.WriteString("afi-list")
		formatList(sb, l.Addrs)
	case LCAFASNumber:
		sb.WriteString("as" + strconv.FormatUint(uint64(l.ASN), 10) + ":")
		formatList(sb, l.Addrs)
	case LCAFKeyValue:
		sb.WriteString("kv{")
		if len(l.Addrs) == 2 {
			l.Addrs[0].format(sb)
			sb.WriteByte('=')
			l.Addrs[1].format(sb)
		}
		sb.WriteByte('}')
	case LCAFNATT:
		l.formatNATT(sb)
	case LCAFGeo:
		l.formatGeo(sb)
	case LCAFSecKey:
		l.formatSecKey(sb)
	case LCAFJSON:
		l.formatJSON(sb)
	default:
		sb.WriteString("lcaf-" + strconv.Itoa(int(l.Type)) + "(" + strconv.Itoa(len(l.Raw)) + " bytes)")
	}
}

// formatMcastInfo writes a multicast-info LCAF: [iid](S,G) or [iid](*,G),
// then the R, L and J flags that are set.
func (l *LCAF) formatMcastInfo(sb *strings.Builder) {
	sb.WriteString("[" + strconv.FormatUint(uint64(l.IID), 10) + "](")
	if len(l.Addrs) == 2 {
		if l.SrcMaskLen == 0 {
			sb.WriteByte('*')
		} else {
			formatMasked(sb, &l.Addrs[0], l.SrcMaskLen)
		}
		sb.WriteByte(',')
		formatMasked(sb, &l.Addrs[1], l.DstMaskLen)
	}
	sb.WriteByte(')')
	if f := l.Rsvd2 & (McastRP | McastLeave | McastJoin); f != 0 {
		sb.WriteByte('/')
		writeFlag(sb, f&McastRP != 0, 'R')
		writeFlag(sb, f&McastLeave != 0, 'L')
		writeFlag(sb, f&McastJoin != 0, 'J')
	}
}

// formatRLE writes an RLE: rle{level:address'name',...}.
func (l *LCAF) formatRLE(sb *strings.Builder) {
	sb.WriteString("rle{")
	for i := range l.RLE {
		if i > 0 {
			sb.WriteByte(',')
		}
		e := &l.RLE[i]
		sb.WriteString(strconv.Itoa(int(e.Level)) + ":")
		e.Address.format(sb)
		if e.Name != "" {
			sb.WriteString("'" + e.Name + "'")
		}
	}
	sb.WriteByte('}')
}

// formatELP writes an ELP: elp{address/LPS,...} with the hop flags that
// are set.
func (l *LCAF) formatELP(sb *strings.Builder) {
	sb.WriteString("elp{")
	for i := range l.ELP {
		if i > 0 {
			sb.WriteByte(',')
		}
		h := &l.ELP[i]
		h.Address.format(sb)
		if h.Lookup || h.Probe || h.Strict {
			sb.WriteByte('/')
			writeFlag(sb, h.Lookup, 'L')
			writeFlag(sb, h.Probe, 'P')
			writeFlag(sb, h.Strict, 'S')
		}
	}
	sb.WriteByte('}')
}

// formatNATT writes a NAT-traversal LCAF: its ports, then its addresses
// named by position (global, ms, private, rtr...).
func (l *LCAF) formatNATT(sb *strings.Builder) {
	sb.WriteString("nat{ms-port " + strconv.Itoa(int(l.MSPort)) + ",etr-port " + strconv.Itoa(int(l.ETRPort)))
	for i := range l.Addrs {
		switch i {
		case 0:
			sb.WriteString(",global ")
		case 1:
			sb.WriteString(",ms ")
		case 2:
			sb.WriteString(",private ")
		default:
			sb.WriteString(",rtr ")
		}
		l.Addrs[i].format(sb)
	}
	sb.WriteByte('}')
}

// formatGeo writes a geo-coordinates LCAF: geo(N1°2'3",E4°5'6",7m):addr.
func (l *LCAF) formatGeo(sb *strings.Builder) {
	g := &l.Geo
	sb.WriteString("geo(")
	sb.WriteByte("SN"[b2i(g.North)])
	sb.WriteString(strconv.Itoa(int(g.LatDegrees)) + "°" + strconv.Itoa(int(g.LatMinutes)) + "'" + strconv.Itoa(int(g.LatSeconds)) + "\",")
	sb.WriteByte("WE"[b2i(g.East)])
	sb.WriteString(strconv.Itoa(int(g.LonDegrees)) + "°" + strconv.Itoa(int(g.LonMinutes)) + "'" + strconv.Itoa(int(g.LonSeconds)) + "\"")
	if g.Altitude != GeoNoAltitude {
		sb.WriteString("," + strconv.Itoa(int(g.Altitude)) + "m")
	}
	sb.WriteString("):")
	formatList(sb, l.Addrs)
}

// formatSecKey writes a security-key LCAF: its algorithm and key count,
// not the key material.
func (l *LCAF) formatSecKey(sb *strings.Builder) {
	sb.WriteString("seckey{alg " + strconv.Itoa(int(l.Key.Algorithm)) + ",keys " + strconv.Itoa(len(l.Key.Keys)))
	if l.Key.Revoked {
		sb.WriteString(",revoked")
	}
	sb.WriteByte('}')
	if len(l.Addrs) > 0 {
		sb.WriteByte(':')
		formatList(sb, l.Addrs)
	}
}

// formatJSON writes a JSON LCAF: the quoted text, or the length of a
// binary one, then the address if there is one.
func (l *LCAF) formatJSON(sb *strings.Builder) {
	sb.WriteString("json")
	if l.Rsvd2&JSONBinary != 0 {
		sb.WriteString("(binary " + strconv.Itoa(len(l.Raw)) + " bytes)")
	} else {
		sb.WriteString(strconv.Quote(string(l.Raw)))
	}
	if len(l.Addrs) > 0 && !l.Addrs[0].IsZero() {
		sb.WriteByte(':')
		formatList(sb, l.Addrs)
	}
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

func writeFlag(sb *strings.Builder, set bool, c byte) {
	if set {
		sb.WriteByte(c)
	}
}

// formatList writes one address as is, several as {a,b,...}.
func formatList(sb *strings.Builder, as []Address) {
	if len(as) == 1 {
		as[0].format(sb)
		return
	}
	sb.WriteByte('{')
	for i := range as {
		if i > 0 {
			sb.WriteByte(',')
		}
		as[i].format(sb)
	}
	sb.WriteByte('}')
}

// formatMasked writes a with "/masklen" unless the mask covers the whole
// (innermost) IP address.
func formatMasked(sb *strings.Builder, a *Address, ml uint8) {
	a.format(sb)
	_, in, ok := a.Unwrap()
	if ok && (in.AFI == AFIIPv4 || in.AFI == AFIIPv6) && int(ml) == in.IP.BitLen() {
		return
	}
	sb.WriteString("/" + strconv.Itoa(int(ml)))
}

func (a *Address) format(sb *strings.Builder) {
	if a.AFI == AFILCAF {
		a.LCAF.format(sb)
		return
	}
	sb.WriteString(a.String())
}
