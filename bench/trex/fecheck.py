"""Checks the TRex side of every profile without TRex (scapy only):

    python3 bench/trex/fecheck.py

A stand-in for trex_stl_lib.api records the streams and field-engine
instructions each profile's get_streams() returns; the field engine is then
played here on each stream's base packet, packet after packet, and every
packet must equal, byte for byte, the one the profile's packets() function
builds for that flow (addresses, paired checksum fields, ports, nonce). It
catches wrong offsets and variables that drift apart; what TRex does with
the instructions on a NIC is not checked (TRex cannot run here).
"""

import os
import sys
import types

from scapy.compat import raw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Rec:
    """Records a constructor's keyword arguments."""

    def __init__(self, *args, **kw):
        self.args, self.kw = args, kw


def fake_api():
    """A trex_stl_lib.api module whose classes only record arguments."""
    api = types.ModuleType("trex_stl_lib.api")
    for name in ("STLStream", "STLPktBuilder", "STLTXCont", "STLVmFlowVar", "STLVmWrFlowVar"):
        setattr(api, name, type(name, (Rec,), {}))
    api.STLScVmRaw = type("STLScVmRaw", (Rec,), {})
    pkg = types.ModuleType("trex_stl_lib")
    pkg.api = api
    sys.modules["trex_stl_lib"], sys.modules["trex_stl_lib.api"] = pkg, api
    return api


def play(base, vm, k):
    """The k-th packet (from 0) a stream with field engine vm sends."""
    vals = {}
    b = bytearray(base)
    for ins in vm.args[0]:
        kw = ins.kw
        if type(ins).__name__ == "STLVmFlowVar":
            lo, hi, init = kw["min_value"], kw["max_value"], kw.get("init_value", kw["min_value"])
            span = hi - lo + 1
            step = k if kw["op"] == "inc" else -k
            vals[kw["name"]] = (kw["size"], lo + (init - lo + step) % span)
        elif type(ins).__name__ == "STLVmWrFlowVar":
            size, v = vals[kw["fv_name"]]
            off = kw["pkt_offset"]
            b[off:off + size] = v.to_bytes(size, "big")
        else:
            raise AssertionError("unexpected instruction %s" % type(ins).__name__)
    return bytes(b)


def check(name, tunables, flows, packets_kw):
    """Plays name's streams for 2 * flows packets against packets()."""
    import importlib
    prof = importlib.import_module(name)
    streams = prof.register().get_streams(tunables)
    sizes = set()
    for s in streams:
        pb = s.kw["packet"]
        base, vm = raw(pb.kw["pkt"]), pb.kw["vm"]
        fs = len(base) + 4
        want = prof.packets(flows=flows, size=fs, count=2 * flows, **packets_kw)
        for k in range(2 * flows):
            got = play(base, vm, k)
            if got != raw(want[k]):
                raise AssertionError("%s %s: stream of %d-byte frames, packet %d differs from packets()"
                                     % (name, tunables, fs, k))
        sizes.add(fs)
    print("%s %s: %d streams (frame sizes %s), %d packets each match packets()"
          % (name, " ".join(tunables), len(streams), sorted(sizes), 2 * flows))


def main():
    fake_api()
    flows = 50
    # extra: the profile's further boolean tunables, each played off and on.
    for name, extra in (("itr", ()), ("etr", ("rloc6",)), ("rtr", ("rloc6",)), ("mcast", None)):
        for ipv6 in ((False, True) if extra is not None else (False,)):
            for on in ((False, True) if extra else (False,)):
                for size in ("64", "imix"):
                    t = ["--flows", str(flows), "--size", size]
                    kw = {}
                    if extra is not None:
                        t += ["--ipv6", "1" if ipv6 else "0"]
                        kw["ipv6"] = ipv6
                    for x in extra or ():
                        t += ["--" + x, "1" if on else "0"]
                        kw[x] = on
                    check(name, t, flows, kw)
    # Older TRex releases pass "-t flows=...,size=..." as keyword arguments.
    import itr
    n = len(itr.register().get_streams(direction=0, flows="10", size="imix"))
    if n != 3:
        raise AssertionError("itr with keyword tunables: %d streams, want 3 (IMIX)" % n)
    print("itr flows=10,size=imix (keyword tunables): 3 streams")
    return 0


if __name__ == "__main__":
    sys.exit(main())
