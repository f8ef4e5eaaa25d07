# Run: python3 wire/testdata/ddt_sig_golden.py  (prints goldenSignedReferral)
# Independent computation of the signed Map-Referral of
# wire/referralsig_test.go: the message packed by hand with struct from the
# RFC 8111 §6.4 / §6.4.1 layouts, signed with the `cryptography` package
# (RSASSA-PKCS1-v1_5, SHA-256) with ddt_rsa_key.pem. PKCS#1 v1.5 signatures
# are deterministic, so Go's signature of the same bytes must be identical.
import os, struct
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
D = os.path.dirname(os.path.abspath(__file__))
key = serialization.load_pem_private_key(open(os.path.join(D, 'ddt_rsa_key.pem'), 'rb').read(), None)

def loc(a):  # priority 1, weight 50, M-priority 255, M-weight 0, R bit, AFI 1
    return bytes([1, 50, 255, 0]) + struct.pack('>HH', 0x0001, 1) + bytes(a)

def record(ttl, nrefs, mask, act, a, i, sigcnt, eid_afi, eid, locs):
    flags = act << 13 | a << 12 | i << 11
    return struct.pack('>IBBHHH', ttl, nrefs, mask, flags, sigcnt << 12, eid_afi) + eid + b''.join(locs)

def sighdr(orig_ttl, exp, inc, keytag, siglen, alg):
    return struct.pack('>IIIHHBBH', orig_ttl, exp, inc, keytag, siglen, alg, 0, 0)

TTL, EXP, INC, TAG = 1440, 1798761600, 1796083200, 0x1234  # 2027-01-01, 2026-12-01 UTC
locs = [loc([192, 0, 2, 1]), loc([192, 0, 2, 2])]
rec1 = record(TTL, 2, 16, 1, 1, 0, 1, 1, bytes([10, 1, 0, 0]), locs)
signed = record(0, 2, 16, 1, 1, 0, 1, 1, bytes([10, 1, 0, 0]), locs) + sighdr(TTL, EXP, INC, TAG, 0, 1)
sig = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
rec2 = record(0, 0, 128, 5, 0, 1, 0, 2, bytes.fromhex('20010db8000000000000000000000001'), [])
msg = struct.pack('>BBBB', 6 << 4, 0, 0, 2) + bytes(range(1, 9)) + rec1 + sighdr(TTL, EXP, INC, TAG, len(sig), 1) + sig + rec2
print('signed data:', signed.hex())
print('message:', msg.hex())
