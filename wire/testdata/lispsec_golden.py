# Independent computation of the LISP-SEC golden vectors in wire/lispsec_golden_test.go.
import hmac, hashlib, struct
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

def hkdf(h, ikm, salt, info, L):
    prk = hmac.new(salt, ikm, h).digest()
    out, t, i = b"", b"", 1
    while len(out) < L:
        t = hmac.new(prk, t + info + bytes([i]), h).digest(); out += t; i += 1
    return out[:L]

nonce = bytes.fromhex("0102030405060708")
itr_otk = bytes.fromhex("00112233445566778899aabbccddeeff")
mr_psk = b"mr-key"
site_psk = b"site-key"
s = b"OTK-Key-Wrap"

def wrap(psk, otk):
    kek = hkdf(hashlib.sha256, nonce + s + psk, s, b"", 16)
    return kek, aes_key_wrap(kek, otk)

kek1, w1 = wrap(mr_psk, itr_otk)
print("kek(mr)", kek1.hex()); print("wrapped ITR-OTK", w1.hex())
ms_otk = hkdf(hashlib.sha256, itr_otk, nonce, b"", 16)
print("MS-OTK sha256", ms_otk.hex())
print("MS-OTK sha1", hkdf(hashlib.sha1, itr_otk, nonce, b"", 16).hex())
kek2, w2 = wrap(site_psk, ms_otk)
print("wrapped MS-OTK", w2.hex())

# ITR's ECM AD: type 1, V 0, HMAC 2, OTK len 24, wrap 2, wrapped OTK, EID-AD short (len 4, KDF 2)
ecm_ad = bytes([1, 0]) + struct.pack(">HHH", 2, 24, 2) + w1 + struct.pack(">HH", 4, 2)
print("ITR ECM AD", ecm_ad.hex())

# Map-Server's EID-AD: KDF 2, 1 record 10.1.0.0/16, EID HMAC 2 (16 bytes), keyed with ITR-OTK
recs = bytes([0, 16]) + struct.pack(">H", 1) + bytes([10, 1, 0, 0])
eidad_len = 8 + len(recs) + 16
eidad0 = struct.pack(">HHBBH", eidad_len, 2, 1, 0, 2) + recs + bytes(16)
eidmac = hmac.new(itr_otk, eidad0, hashlib.sha256).digest()[:16]
eidad = eidad0[:-16] + eidmac
print("EID-AD", eidad.hex())

# MS->ETR ECM AD: type 1, HMAC 2, wrap 2, wrapped MS-OTK, full EID-AD
ms_ad = bytes([1, 0]) + struct.pack(">HHH", 2, 24, 2) + w2 + eidad
print("MS ECM AD", ms_ad.hex())

# Map-Reply: S bit, 1 record 10.1.0.0/16 TTL 1440 A, 1 locator 192.0.2.1 pri 1 w 100 mp 255 mw 0 L R
hdr = struct.pack(">I", (2 << 28) | (1 << 25) | 1) + nonce
rec = struct.pack(">IBBHHH", 1440, 1, 16, 0x1000, 0, 1) + bytes([10, 1, 0, 0])
loc = bytes([1, 100, 255, 0]) + struct.pack(">HH", 0x0005, 1) + bytes([192, 0, 2, 1])
mr0 = hdr + rec + loc + bytes([1, 0, 0, 0]) + eidad + struct.pack(">HH", 4 + 16, 2) + bytes(16)
pktmac = hmac.new(ms_otk, mr0, hashlib.sha256).digest()[:16]
mr = mr0[:-16] + pktmac
print("Map-Reply", mr.hex())

# The same Map-Reply with HMAC-SHA-1-96 (EID and PKT HMAC ID 1) and HKDF-SHA1 (KDF ID 1).
ms_otk1 = hkdf(hashlib.sha1, itr_otk, nonce, b"", 16)
eidad0 = struct.pack(">HHBBH", 8 + len(recs) + 12, 1, 1, 0, 1) + recs + bytes(12)
eidad1 = eidad0[:-12] + hmac.new(itr_otk, eidad0, hashlib.sha1).digest()[:12]
mr0 = hdr + rec + loc + bytes([1, 0, 0, 0]) + eidad1 + struct.pack(">HH", 4 + 12, 1) + bytes(12)
print("Map-Reply sha1", (mr0[:-12] + hmac.new(ms_otk1, mr0, hashlib.sha1).digest()[:12]).hex())
