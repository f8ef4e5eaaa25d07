"""TRex stateless profile: rloc as an ITR (LISP encapsulation, RFC 9300 §5).

TRex port 0 sends plain IP/UDP site traffic into rloc's site interface, from
the site's EIDs to flows distinct remote EIDs (10.2.0.0/16 or
2001:db8:2::/48); rloc encapsulates it towards port 1 (RLOC 192.0.2.2 or
2001:db8:ff::2), see bench/trex/README.md and rlocd-itr.yaml.

  trex> start -f bench/trex/itr.py -m 10mpps --port 0 -t --flows 4096 --size 64
  trex> start -f bench/trex/itr.py -m 10mpps --port 0 -t --flows 4096 --size imix --ipv6 1

packets() builds the frames with scapy only (bench/trex/trex_test.go replays
them into rloc); register() is what TRex loads.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lispgen as g  # noqa: E402

DEFAULTS = {"flows": 4096, "size": 64, "ipv6": 0}

SPORT, DPORT = 1025, 5001


def frame(f, frame_size, ipv6):
    """Flow f's frame of frame_size bytes (with FCS; IPv6 frames are at
    least 66 bytes, the size of their headers). The destination EID's low 16
    bits are 1 + f; the field paired with it (lispgen.paired_vm) is the IPv4
    identification or the low 16 bits of the IPv6 source EID."""
    up, down = 1 + f, 0xFFFE - f
    if ipv6:
        src, dst = g.host(g.SITE_NET6, down, True), g.host(g.REMOTE_NET6, up, True)
    else:
        src, dst = g.SITE_HOST4, g.host(g.REMOTE_NET4, up, False)
    inner = g.ip_udp(src, dst, ipv6, SPORT, DPORT, g.inner_len(frame_size), udp_checksum=False)
    if not ipv6:
        inner.id = down
    return g.ether(g.MAC_PORT0, g.MAC_DUT0, inner)


def packets(flows=DEFAULTS["flows"], size=DEFAULTS["size"], ipv6=False, count=None):
    """count frames (default: one per flow) cycling over flows flows, of
    frame size size (a number or "imix") -> list of scapy packets."""
    flows = g.check_flows(flows)
    ipv6 = g.as_bool(ipv6)
    count = flows if count is None else int(count)
    return [frame(i % flows, fs, ipv6) for i, fs in enumerate(g.frame_sizes(size, count))]


class ITRProfile:
    """The TRex side: one stream per frame size, the field engine stepping
    the destination EID over flows."""

    def get_streams(self, tunables=None, **kwargs):
        t = g.tunables(tunables, kwargs, DEFAULTS)
        flows, ipv6 = g.check_flows(t["flows"]), g.as_bool(t["ipv6"])
        api = g.trex_api()
        if ipv6:
            up, down = g.OFF_IP + g.OFF_V6_DST + 14, g.OFF_IP + g.OFF_V6_SRC + 14
        else:
            up, down = g.OFF_IP + g.OFF_V4_DST + 2, g.OFF_IP + g.OFF_V4_ID
        return g.streams_by_size(api, t["size"], lambda fs: frame(0, fs, ipv6),
                                 lambda _: g.paired_vm(api, flows, up, down))


def register():
    """Called by TRex when it loads this file."""
    return ITRProfile()
