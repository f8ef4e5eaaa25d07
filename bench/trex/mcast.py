"""TRex stateless profile: rloc as a multicast ITR replicating head-end
(signal-free LISP multicast, RFC 8378; RLE, RFC 8060 §4.9).

TRex port 0 is a source in the site (10.1.0.10) sending to flows groups
232.1.0.1, 232.1.0.2 ... (one (S,G) each); rloc looks (S,G) up, finds the
replication list (RLE) the ETRs registered with the Map-Server, and sends
one encapsulated copy per RLE entry out of its core interface. See
bench/trex/README.md and rlocd-mcast.yaml.

  trex> start -f bench/trex/mcast.py -m 1mpps --port 0 -t --flows 1 --size 64

IPv4 groups only.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lispgen as g  # noqa: E402

DEFAULTS = {"flows": 1, "size": 64}

GROUP_NET = "232.1.0.0"
SPORT, DPORT = 1025, 5001


def group(f):
    """Flow f's group: 232.1.0.0 plus 1 + f."""
    return g.host(GROUP_NET, 1 + f, False)


def group_mac(grp):
    """The Ethernet address of an IPv4 group (RFC 1112 §6.4)."""
    a = [int(x) for x in grp.split(".")]
    return "01:00:5e:%02x:%02x:%02x" % (a[1] & 0x7F, a[2], a[3])


def frame(f, frame_size):
    """Flow f's frame: from the site source to its group, the IPv4
    identification paired with the group's low 16 bits (lispgen.paired_vm)."""
    grp = group(f)
    inner = g.ip_udp(g.SITE_HOST4, grp, False, SPORT, DPORT, g.inner_len(frame_size), udp_checksum=False)
    inner.id = 0xFFFE - f
    return g.ether(g.MAC_PORT0, group_mac(grp), inner)


def packets(flows=DEFAULTS["flows"], size=DEFAULTS["size"], count=None):
    """count frames (default: one per flow) cycling over flows groups ->
    list of scapy packets."""
    flows = g.check_flows(flows)
    count = flows if count is None else int(count)
    return [frame(i % flows, fs) for i, fs in enumerate(g.frame_sizes(size, count))]


class McastProfile:
    """The TRex side: the field engine steps the group (and its MAC)."""

    def get_streams(self, tunables=None, **kwargs):
        t = g.tunables(tunables, kwargs, DEFAULTS)
        flows = g.check_flows(t["flows"])
        api = g.trex_api()
        up, down = g.OFF_IP + g.OFF_V4_DST + 2, g.OFF_IP + g.OFF_V4_ID
        # The group's low 16 bits are also the MAC's last two bytes.
        mac = [api.STLVmWrFlowVar(fv_name="up", pkt_offset=4)]
        return g.streams_by_size(api, t["size"], lambda fs: frame(0, fs),
                                 lambda _: g.paired_vm(api, flows, up, down, mac))


def register():
    """Called by TRex when it loads this file."""
    return McastProfile()
