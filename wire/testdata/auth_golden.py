# Run: python3 wire/testdata/auth_golden.py  (prints the rows of authGolden)
# Independent computation of the golden HMACs of wire/auth_golden_test.go:
# python3's hmac/hashlib, HKDF written out from RFC 5869 (extract, expand).
import hmac, hashlib, struct, sys
import os
D=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lispers') + '/'
key=b'rloc-interop-secret'
SALT={3:b'Map-Register Authentication',4:b'Map-Notify Authentication',5:b'Map-Notify-Ack Authentication'}
def hkdf_sha256(ikm, salt, info=b'', L=32):
    prk=hmac.new(salt, ikm, hashlib.sha256).digest()
    t=b''; out=b''; i=1
    while len(out)<L:
        t=hmac.new(prk, t+info+bytes([i]), hashlib.sha256).digest(); out+=t; i+=1
    return out[:L]
def load(name):
    return bytes.fromhex(open(D+name+'.hex').read().strip())
def variant(orig, keyid, alg, full, records):
    n0=struct.unpack('>H',orig[14:16])[0]
    body=orig[16+n0:]
    w=struct.unpack('>I',orig[:4])[0]; t=w>>28
    trailer=0
    if t==3 and w&(1<<25): trailer=24
    if t in (4,5) and w&(1<<27): trailer=24
    h={1:hashlib.sha1,2:hashlib.sha256,3:hashlib.sha256}[alg]
    n={1:(12,20),2:(16,32),3:(16,32)}[alg][full]
    msg=orig[:12]+bytes([keyid,alg])+struct.pack('>H',n)+bytes(n)+body
    end=len(msg)-trailer if records else len(msg)
    k=key
    if alg==3:
        s=SALT[t]; k=hkdf_sha256(orig[4:12]+s+key, s)
    return hmac.new(k, msg[:end], h).digest()[:n].hex()
for name in ['mreg_sha1','mnot_sha256','mnotack_sha1']:
    orig=load(name)
    for keyid in (0,5):
        for alg in (1,2,3):
            for full in (0,1):
                for rec in (0,1):
                    print('\t{"%s", %d, wire.AuthAlg(%d), %s, %s, "%s"},'%(name,keyid,alg,'true' if full else 'false','true' if rec else 'false',variant(orig,keyid,alg,full,rec)))
# the lispers vectors as sent verify with this computation too
for name in ['mreg_sha1','mreg_sha256','mnot_sha256','mnotack_sha1']:
    o=load(name); n=struct.unpack('>H',o[14:16])[0]; alg=o[13]
    h={1:hashlib.sha1,2:hashlib.sha256}[alg]
    m=o[:16]+bytes(n)+o[16+n:]
    print('#', name, hmac.new(key,m,h).digest()[:n]==o[16:16+n])
