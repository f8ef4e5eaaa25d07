"""Writes a profile's packets to a pcap file, with scapy only (no TRex):

    python3 bench/trex/pcap.py OUT.pcap PROFILE [name=value ...]

PROFILE is a profile of this folder (itr, etr, rtr, mcast); the name=value
pairs are the arguments of its packets() function, e.g.

    python3 bench/trex/pcap.py /tmp/itr.pcap itr flows=4096 size=imix ipv6=1 count=200

bench/trex/trex_test.go replays such files into rloc with tcpreplay.
"""

import importlib
import os
import sys


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    out, name = argv[1], argv[2]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    kwargs = {}
    for a in argv[3:]:
        k, sep, v = a.partition("=")
        if not sep:
            sys.stderr.write("pcap.py: %r is not name=value\n" % a)
            return 2
        kwargs[k] = v
    from scapy.utils import wrpcap
    profile = importlib.import_module(name)
    pkts = profile.packets(**kwargs)
    wrpcap(out, pkts)
    print("%s: %d packets" % (out, len(pkts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
