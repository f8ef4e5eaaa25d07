"""Packet builders shared by the rloc TRex profiles (bench/trex/*.py).

Everything here needs only scapy (Debian python3-scapy): the profiles' plain
packets() functions build their frames with it, so bench/trex/trex_test.go
can write them to a pcap and replay them into rloc without TRex. The
TRex-only parts (field engine, streams) live in the profiles and import
trex_stl_lib when TRex calls them.

Sizes are Ethernet frame sizes on the wire with the 4-byte FCS, as traffic
generators count them: "64" is a 60-byte frame handed to the NIC.

The address plan is the one of bench/trex/rlocd-*.yaml and the README.
"""

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

FCS = 4
ETHER = 14

# LISP data port (RFC 9300 §5.1 "UDP destination port 4341").
LISP_DATA_PORT = 4341

# Header bits of the LISP data header's first byte (RFC 9300 §5.3):
# N (nonce present) and I (instance-ID present).
FLAG_N = 0x80
FLAG_I = 0x08

# MAC addresses of the lab (trex_test.go); TRex replaces them with its
# ports' configured addresses (trex_cfg.yaml), so they only matter here.
MAC_PORT0 = "02:00:00:00:00:10"  # TRex port 0 / the lab's p0
MAC_DUT0 = "02:00:00:00:01:01"   # rloc's interface facing port 0
MAC_DUT1 = "02:00:00:00:02:01"   # rloc's interface facing port 1
MAC_PORT1 = "02:00:00:00:02:02"  # TRex port 1 / the lab's p1

# The EID and RLOC plan.
SITE_HOST4, SITE_HOST6 = "10.1.0.10", "2001:db8:1::10"   # behind port 0
SITE_NET4, SITE_NET6 = "10.1.0.0", "2001:db8:1::"        # the local site
REMOTE_NET4, REMOTE_NET6 = "10.2.0.0", "2001:db8:2::"    # the remote EIDs
RLOC_DUT4, RLOC_DUT6 = "192.0.2.1", "2001:db8:ff::1"     # rloc's RLOCs
RLOC_PEER4, RLOC_PEER6 = "192.0.2.2", "2001:db8:ff::2"   # port 1's RLOCs
RLOC_NEXT4 = "198.51.100.2"                               # the RTR's next RLOCs
RLOC_NEXT6 = "2001:db8:100::2"

# IMIX: the common 7:4:1 mix of 64, 594 and 1518-byte frames.
IMIX = ((64, 7), (594, 4), (1518, 1))

# Flow counts are bounded by the 16-bit field the field engine varies.
MAX_FLOWS = 0xFFFE


def frame_sizes(size, n):
    """The frame sizes (with FCS) of n packets: size is a number or "imix"
    (the IMIX mix, in its 7:4:1 proportions)."""
    if str(size).lower() == "imix":
        pattern = [s for s, w in IMIX for _ in range(w)]
    else:
        pattern = [int(size)]
    return [pattern[i % len(pattern)] for i in range(n)]


def check_flows(flows):
    """flows as an int in 1..MAX_FLOWS, or ValueError."""
    flows = int(flows)
    if not 1 <= flows <= MAX_FLOWS:
        raise ValueError("flows: %d (1..%d)" % (flows, MAX_FLOWS))
    return flows


def host(net, low16, ipv6):
    """Address net + low16 (the low 16 bits of an IPv4 /16 or IPv6 /64)."""
    if ipv6:
        return "%s%x" % (net, low16)
    a, b, _, _ = net.split(".")
    return "%s.%s.%d.%d" % (a, b, low16 >> 8, low16 & 0xFF)


def ip_udp(src, dst, ipv6, sport, dport, length, udp_checksum=True):
    """An IP/UDP packet of exactly length bytes (padded with 0x61), TTL or
    hop limit 64. IPv4 may carry a zero UDP checksum (RFC 768)."""
    if ipv6:
        l3 = IPv6(src=src, dst=dst, hlim=64)
        hdr = 40
    else:
        l3 = IP(src=src, dst=dst, ttl=64, flags="DF")
        hdr = 20
    udp = UDP(sport=sport, dport=dport)
    if not ipv6 and not udp_checksum:
        udp.chksum = 0
    pad = max(0, length - hdr - 8)
    return l3 / udp / Raw(b"a" * pad)


def lisp_header(iid, nonce):
    """The 8-byte LISP data header (RFC 9300 §5.3) with the N and I bits:
    a 24-bit nonce, a 24-bit instance-ID and 8 zero locator-status bits."""
    nonce &= 0xFFFFFF
    iid &= 0xFFFFFF
    return bytes([FLAG_N | FLAG_I, nonce >> 16, (nonce >> 8) & 0xFF, nonce & 0xFF,
                  iid >> 16, (iid >> 8) & 0xFF, iid & 0xFF, 0])


def lisp_encap(outer_src, outer_dst, sport, iid, nonce, inner):
    """inner in IPv4 (or IPv6, for IPv6 RLOCs)/UDP 4341/LISP (RFC 9300
    §5.3): outer TTL or hop limit 64, a zero UDP checksum (RFC 9300 §5.3
    allows it for IPv4 and, after RFC 6935 and 6936, for IPv6)."""
    if ":" in outer_src:
        ip = IPv6(src=outer_src, dst=outer_dst, hlim=64)
    else:
        ip = IP(src=outer_src, dst=outer_dst, ttl=64, flags="DF")
    return ip / UDP(sport=sport, dport=LISP_DATA_PORT, chksum=0) / Raw(lisp_header(iid, nonce)) / inner


# Outer headers an encapsulated frame carries around its inner packet:
# IPv4 (20) or IPv6 (40), UDP (8) and LISP (8).
ENCAP4 = 20 + 8 + 8
ENCAP6 = 40 + 8 + 8


def encap_len(rloc6):
    """The length of the outer headers over IPv6 RLOCs (rloc6) or IPv4."""
    return ENCAP6 if rloc6 else ENCAP4


def ether(src, dst, payload):
    """payload in Ethernet II (scapy sets the EtherType from it)."""
    return Ether(src=src, dst=dst) / payload


def inner_len(frame_size, outer=0):
    """The IP length inside a frame of frame_size bytes (with FCS) that
    carries outer bytes of encapsulation before the inner packet."""
    return frame_size - FCS - ETHER - outer


def trex_api():
    """The trex_stl_lib API module, imported only when TRex loads a profile
    (scapy-only users never reach this)."""
    from trex_stl_lib import api  # noqa: deferred: TRex is not needed to build packets
    return api


def tunables(args, kwargs, defaults):
    """Profile arguments from TRex's console: new releases pass "-t --flows
    4096 --size imix" as a list of strings (args), older ones pass
    "-t flows=4096,size=imix" as keyword arguments. Returns defaults updated
    with either, values as strings or as given."""
    out = dict(defaults)
    if isinstance(args, (list, tuple)):
        import argparse
        p = argparse.ArgumentParser(prog="rloc-trex-profile")
        for k, v in defaults.items():
            p.add_argument("--" + k, default=v)
        out.update(vars(p.parse_args(list(args))))
    for k in defaults:
        if k in kwargs:
            out[k] = kwargs[k]
    return out


def as_bool(v):
    """A tunable's truth value ("1", "true", "yes", True...)."""
    return str(v).lower() in ("1", "true", "yes", "on")


# Byte offsets in the frames the profiles build, for TRex's field engine.
OFF_IP = ETHER                   # the (outer) IP header
OFF_V4_ID, OFF_V4_SRC, OFF_V4_DST = 4, 12, 16
OFF_V6_SRC, OFF_V6_DST = 8, 24
OFF_UDP_SPORT = 0                # from the UDP header
# Outer UDP source ports (the flow entropy of RFC 9300 §5.3) are drawn from
# this range.
SPORT_BASE, SPORT_SPAN = 49152, 16384


def off_inner(rloc6):
    """The offset of the inner IP header in an encapsulated frame over IPv6
    RLOCs (rloc6) or IPv4 ones."""
    return ETHER + encap_len(rloc6)


def paired_vm(api, flows, up, down, extra=()):
    """A field engine stepping two 16-bit fields in lockstep: the one at
    byte offset up counts 1, 2 ... flows, the one at down counts 0xfffe,
    0xfffd ... down, so their one's complement sum, and with it every
    checksum covering both, stays what scapy computed for flow 0. extra are
    further instructions."""
    ins = [api.STLVmFlowVar(name="up", min_value=1, max_value=flows, init_value=1, size=2, op="inc"),
           api.STLVmFlowVar(name="down", min_value=0xFFFF - flows, max_value=0xFFFE, init_value=0xFFFE,
                            size=2, op="dec"),
           api.STLVmWrFlowVar(fv_name="up", pkt_offset=up),
           api.STLVmWrFlowVar(fv_name="down", pkt_offset=down)]
    ins.extend(extra)
    return api.STLScVmRaw(ins)


def encap_vm(api, flows, rloc6=False):
    """Field-engine instructions for an encapsulated frame (after paired_vm's
    variables; rloc6: over IPv6 RLOCs): the outer UDP source port steps over
    min(flows, SPORT_SPAN) values and the low 16 bits of the nonce (bytes 2
    and 3 of the LISP header) follow the flow ("up"). The outer UDP checksum
    is zero, so nothing needs fixing."""
    n = min(flows, SPORT_SPAN)
    udp = OFF_IP + (40 if rloc6 else 20)
    return [api.STLVmFlowVar(name="osport", min_value=SPORT_BASE, max_value=SPORT_BASE + n - 1,
                             init_value=SPORT_BASE, size=2, op="inc"),
            api.STLVmWrFlowVar(fv_name="osport", pkt_offset=udp + OFF_UDP_SPORT),
            api.STLVmWrFlowVar(fv_name="up", pkt_offset=udp + 8 + 2)]


def lisp_frame(f, frame_size, ipv6, iid, src_net, src_host, dst_net, dst_host, outer_dst,
               src_mac, dst_mac, dport=5001):
    """Flow f's LISP-encapsulated frame of frame_size bytes (with FCS): the
    inner packet goes from src_net/src_host to dst_net/dst_host (a host of
    the net plus the 16-bit flow value when the host is None), inside IPv4
    from RLOC_PEER4 to outer_dst, or inside IPv6 from RLOC_PEER6 when
    outer_dst is an IPv6 address, UDP source port from the entropy range,
    LISP header with nonce 1 + f and instance-ID iid. The 16-bit field paired
    with the flow value (see paired_vm) is the IPv4 identification or the
    IPv6 UDP source port."""
    up, down = 1 + f, 0xFFFE - f
    rloc6 = ":" in outer_dst

    def addr(net, h):
        return h if h is not None else host(net, up, ipv6)

    inner = ip_udp(addr(src_net, src_host), addr(dst_net, dst_host), ipv6,
                   down if ipv6 else 1025, dport, inner_len(frame_size, encap_len(rloc6)), udp_checksum=False)
    if not ipv6:
        inner.id = down
    outer = lisp_encap(RLOC_PEER6 if rloc6 else RLOC_PEER4, outer_dst, SPORT_BASE + f % SPORT_SPAN, iid, up, inner)
    return ether(src_mac, dst_mac, outer)


def streams_by_size(api, size, build, vm_for):
    """One continuous stream per frame size of size (one for a number, three
    weighted streams for IMIX), each built by build(frame_size) with the
    field engine vm_for(frame_size). The -m multiplier of the console scales
    the total; the weights keep IMIX's proportions."""
    if str(size).lower() == "imix":
        mix = IMIX
    else:
        mix = ((int(size), 1),)
    out = []
    for fs, weight in mix:
        pkt = api.STLPktBuilder(pkt=build(fs), vm=vm_for(fs))
        out.append(api.STLStream(packet=pkt, mode=api.STLTXCont(pps=weight)))
    return out
