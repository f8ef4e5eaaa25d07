"""TRex stateless profile: rloc as an RTR (decapsulate, look up,
re-encapsulate; RFC 9300 §5, RFC 6830bis' re-encapsulating tunnels).

TRex port 0 plays an ITR in RLOC space A (RLOC 192.0.2.2, or
2001:db8:ff::2 with rloc6=1): it sends LISP-encapsulated frames
with instance-ID 7 to the RTR's RLOC 192.0.2.1 on core0, the inner packets
from a site host to flows distinct EIDs of 10.2.0.0/16 or 2001:db8:2::/48.
The RTR decapsulates, finds 198.51.100.2 (TRex port 1, RLOC space B) in its
map-cache and encapsulates again out of core1. With rloc6=1 the frames come
over IPv6 RLOCs (from 2001:db8:ff::2 to 2001:db8:ff::1); with iid=8 the RTR
sends them on over IPv6, to 2001:db8:100::2 (rlocd-rtr.yaml maps instance-ID
8 there). See bench/trex/README.md and rlocd-rtr.yaml.

  trex> start -f bench/trex/rtr.py -m 10mpps --port 0 -t --flows 4096 --size 64

size is the size of the frames TRex sends (with FCS), at least 82 bytes
(IPv4 inside) or 102 (IPv6 inside), 20 more over IPv6 RLOCs; the
re-encapsulated frames have the same size, or 20 bytes more or less when
the RTR changes the outer IP version.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lispgen as g  # noqa: E402

DEFAULTS = {"flows": 4096, "size": 64, "ipv6": 0, "iid": 7, "rloc6": 0}


def frame(f, frame_size, ipv6, iid=7, rloc6=False):
    """Flow f's encapsulated frame, over IPv6 RLOCs when rloc6 (from
    2001:db8:ff::2 to the RTR's 2001:db8:ff::1); the inner destination EID's
    low 16 bits are 1 + f."""
    rloc = g.RLOC_DUT6 if rloc6 else g.RLOC_DUT4
    if ipv6:
        return g.lisp_frame(f, frame_size, True, iid, g.SITE_NET6, g.SITE_HOST6, g.REMOTE_NET6, None,
                            rloc, g.MAC_PORT0, g.MAC_DUT0)
    return g.lisp_frame(f, frame_size, False, iid, g.SITE_NET4, g.SITE_HOST4, g.REMOTE_NET4, None,
                        rloc, g.MAC_PORT0, g.MAC_DUT0)


def packets(flows=DEFAULTS["flows"], size=DEFAULTS["size"], ipv6=False, iid=7, count=None, rloc6=False):
    """count frames (default: one per flow) cycling over flows flows ->
    list of scapy packets."""
    flows = g.check_flows(flows)
    ipv6, rloc6 = g.as_bool(ipv6), g.as_bool(rloc6)
    count = flows if count is None else int(count)
    return [frame(i % flows, fs, ipv6, int(iid), rloc6) for i, fs in enumerate(g.frame_sizes(size, count))]


class RTRProfile:
    """The TRex side: the field engine steps the inner destination EID
    (paired with the IPv4 identification or the IPv6 UDP source port) and
    the outer UDP source port."""

    def get_streams(self, tunables=None, **kwargs):
        t = g.tunables(tunables, kwargs, DEFAULTS)
        flows, ipv6, iid = g.check_flows(t["flows"]), g.as_bool(t["ipv6"]), int(t["iid"])
        rloc6 = g.as_bool(t["rloc6"])
        api = g.trex_api()
        inner = g.off_inner(rloc6)
        if ipv6:
            up, down = inner + g.OFF_V6_DST + 14, inner + 40 + g.OFF_UDP_SPORT
        else:
            up, down = inner + g.OFF_V4_DST + 2, inner + g.OFF_V4_ID
        return g.streams_by_size(api, t["size"], lambda fs: frame(0, fs, ipv6, iid, rloc6),
                                 lambda _: g.paired_vm(api, flows, up, down, g.encap_vm(api, flows, rloc6)))


def register():
    """Called by TRex when it loads this file."""
    return RTRProfile()
