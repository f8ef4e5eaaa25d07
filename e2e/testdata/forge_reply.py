#!/usr/bin/python3
# The forger of TestLispSec/forged: run in the Map-Resolver's namespace, it
# sees each ECM-encapsulated Map-Request arriving there (a raw socket gets a
# copy of every UDP datagram) and answers it at once, from the
# Map-Resolver's address, with a Map-Reply carrying the request's nonce and
# claiming 0.0.0.0/0 (or ::/0 for an IPv6 EID) at 192.0.2.66, without
# LISP-SEC data. It stops after 20 forged replies or 30 seconds.
import socket, struct, sys, time

src, itr = sys.argv[1], sys.argv[2]  # the Map-Resolver's address, the ITR's RLOC
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.settimeout(1)
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.bind((src, 0))
deadline, sent = time.time() + 30, 0
print("ready", flush=True)
while time.time() < deadline and sent < 20:
    try:
        pkt = raw.recv(65535)
    except socket.timeout:
        continue
    ihl = (pkt[0] & 15) * 4
    dport = struct.unpack(">H", pkt[ihl + 2:ihl + 4])[0]
    ecm = pkt[ihl + 8:]
    if dport != 4342 or len(ecm) < 4 or ecm[0] >> 4 != 8:
        continue
    off = 4
    if ecm[0] & 0x08:  # LISP-SEC data: 8 fixed bytes, the OTK (24), the EID-AD
        off += 32 + struct.unpack(">H", ecm[off + 32:off + 34])[0]
    inner = ecm[off:]
    v6 = inner[0] >> 4 == 6
    udp = inner[40:] if v6 else inner[(inner[0] & 15) * 4:]
    sport = struct.unpack(">H", udp[0:2])[0]
    req = udp[8:]
    nonce = req[4:12]
    afi, eid = (2, bytes(16)) if v6 else (1, bytes(4))
    rec = struct.pack(">IBBHHH", 10, 1, 0, 0, 0, afi) + eid
    loc = bytes([1, 100, 255, 0]) + struct.pack(">HH", 1, 1) + bytes([192, 0, 2, 66])
    rep = struct.pack(">I", (2 << 28) | 1) + nonce + rec + loc
    out.sendto(rep, (itr, sport))
    sent += 1
    print("forged reply", nonce.hex(), "to", itr, sport, flush=True)
