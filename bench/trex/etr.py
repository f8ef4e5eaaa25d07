"""TRex stateless profile: rloc as an ETR (LISP decapsulation, RFC 9300 §5).

TRex port 1 plays a remote ITR (RLOC 192.0.2.2): it sends LISP-encapsulated
frames (IPv4, UDP 4341, LISP header with nonce and instance-ID 0, RFC 9300
§5.3) to rloc's RLOC 192.0.2.1 on its core interface (with rloc6=1: IPv6,
from 2001:db8:ff::2 to rloc's 2001:db8:ff::1), the inner packets from
flows distinct remote EIDs (10.2.0.0/16 or 2001:db8:2::/48) to the site host
behind port 0 (10.1.0.10 or 2001:db8:1::10). rloc decapsulates and delivers
them out of its site interface to port 0. See bench/trex/README.md and
rlocd-etr.yaml.

  trex> start -f bench/trex/etr.py -m 10mpps --port 1 -t --flows 4096 --size 64

size is the size of the frames TRex sends (with FCS), at least 82 bytes
(IPv4 inside) or 102 (IPv6 inside), 20 more with rloc6: the outer IPv4, UDP
and LISP headers take 36 bytes (IPv6 ones 56); the decapsulated frames that
reach port 0 are that much shorter.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lispgen as g  # noqa: E402

DEFAULTS = {"flows": 4096, "size": 64, "ipv6": 0, "iid": 0, "rloc6": 0}


def frame(f, frame_size, ipv6, iid=0, rloc6=False):
    """Flow f's encapsulated frame, over IPv6 RLOCs when rloc6 (from
    2001:db8:ff::2 to rloc's 2001:db8:ff::1); the inner source EID's low 16
    bits are 1 + f."""
    rloc = g.RLOC_DUT6 if rloc6 else g.RLOC_DUT4
    if ipv6:
        return g.lisp_frame(f, frame_size, True, iid, g.REMOTE_NET6, None, g.SITE_NET6, g.SITE_HOST6,
                            rloc, g.MAC_PORT1, g.MAC_DUT1)
    return g.lisp_frame(f, frame_size, False, iid, g.REMOTE_NET4, None, g.SITE_NET4, g.SITE_HOST4,
                        rloc, g.MAC_PORT1, g.MAC_DUT1)


def packets(flows=DEFAULTS["flows"], size=DEFAULTS["size"], ipv6=False, iid=0, count=None, rloc6=False):
    """count frames (default: one per flow) cycling over flows flows ->
    list of scapy packets."""
    flows = g.check_flows(flows)
    ipv6, rloc6 = g.as_bool(ipv6), g.as_bool(rloc6)
    count = flows if count is None else int(count)
    return [frame(i % flows, fs, ipv6, int(iid), rloc6) for i, fs in enumerate(g.frame_sizes(size, count))]


class ETRProfile:
    """The TRex side: the field engine steps the inner source EID (paired
    with the IPv4 identification or the IPv6 UDP source port) and the outer
    UDP source port."""

    def get_streams(self, tunables=None, **kwargs):
        t = g.tunables(tunables, kwargs, DEFAULTS)
        flows, ipv6, iid = g.check_flows(t["flows"]), g.as_bool(t["ipv6"]), int(t["iid"])
        rloc6 = g.as_bool(t["rloc6"])
        api = g.trex_api()
        inner = g.off_inner(rloc6)
        if ipv6:
            up, down = inner + g.OFF_V6_SRC + 14, inner + 40 + g.OFF_UDP_SPORT
        else:
            up, down = inner + g.OFF_V4_SRC + 2, inner + g.OFF_V4_ID
        return g.streams_by_size(api, t["size"], lambda fs: frame(0, fs, ipv6, iid, rloc6),
                                 lambda _: g.paired_vm(api, flows, up, down, g.encap_vm(api, flows, rloc6)))


def register():
    """Called by TRex when it loads this file."""
    return ETRProfile()
