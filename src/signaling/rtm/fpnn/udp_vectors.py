#!/usr/bin/env python3
"""Independent byte vectors for FPNN's reliable UDP (ARQ v2), the sign hash and example packets,
written from a reading of the framework's C++ (core/UDP.v2/, 1.3.1), not from roomagent's Rust.
`udp/tests.rs` checks the Rust session against what this prints: python3 udp_vectors.py
"""

import sys

M32 = 0xFFFFFFFF


def rotl32(x, n):
    n %= 32
    return ((x << n) | (x >> (32 - n))) & M32 if n else x & M32


def rotr32(x, n):
    n %= 32
    return ((x >> n) | (x << (32 - n))) & M32 if n else x & M32


def sum_bytes_u8(x):
    return ((x >> 24) + (x >> 16) + (x >> 8) + x) & 0xFF  # uint8 overflow wraps


def sign_cpp(fseq, first_sign, cseq):
    """Value the C++ puts in / expects in byte 3 of a package whose UDP seq is
    `cseq`, once the first reliable package (seq `fseq`, sign `first_sign`) is
    known.  fseq/cseq are the *numeric* seqs (wire carries them big-endian)."""
    s = first_sign & 0xFF
    rs = (~s) & 0xFF                       # uint8_t rsign = ~_sign
    a = (fseq >> 24) & 0xFF                # *fseqBE  == first wire byte of fseq
    f = rotr32(a, s % 32)                  # _preprossedFirstSeq
    b = ((cseq >> 24) & 0xFF) ^ rs         # cseqBE[0] ^= rsign ; *cseqBE
    c = rotl32(b, rs % 32)                 # newC
    return sum_bytes_u8(f ^ c)             # resByte[0]+..+resByte[3] as uint8


def sign_doc(fseq, first_sign, cseq):
    """Documented algorithm taken literally with big-endian words. NOT what peers use."""
    s = first_sign & 0xFF
    rs = (~s) & 0xFF
    fb = bytearray(fseq.to_bytes(4, "big")); fb[1] ^= s; fb[3] ^= s
    cb = bytearray(cseq.to_bytes(4, "big")); cb[0] ^= rs; cb[2] ^= rs
    f = rotr32(int.from_bytes(fb, "big"), s % 32)
    c = rotl32(int.from_bytes(cb, "big"), rs % 32)
    return sum_bytes_u8(f ^ c)


def explain(fseq, first_sign, cseq):
    s = first_sign & 0xFF
    rs = (~s) & 0xFF
    a = (fseq >> 24) & 0xFF
    f = rotr32(a, s % 32)
    b = ((cseq >> 24) & 0xFF) ^ rs
    c = rotl32(b, rs % 32)
    r = f ^ c
    print(f"fseq=0x{fseq:08X} sign=0x{s:02X} cseq=0x{cseq:08X}")
    print(f"  rsign=0x{rs:02X} cyc1=sign%32={s % 32} cyc2=rsign%32={rs % 32}")
    print(f"  a=fseq[0]=0x{a:02X} F=rotr32(a,{s % 32})=0x{f:08X}")
    print(f"  b=cseq[0]^rsign=0x{(cseq >> 24) & 0xFF:02X}^0x{rs:02X}=0x{b:02X} C=rotl32(b,{rs % 32})=0x{c:08X}")
    print(f"  F^C=0x{r:08X} -> bytes sum mod 256 = 0x{sign_cpp(fseq, s, cseq):02X}"
          f"   (doc-literal variant would give 0x{sign_doc(fseq, s, cseq):02X})")


EXAMPLES = [
    (0x1A2B3C4D, 0x5A, 0x1A2B3C4E),   # next reliable package of the same session
    (0x1A2B3C4D, 0x5A, 0x65F3A1B2),   # a later discardable package (ms-clock seq)
    (0xFFFFFFF0, 0x00, 0x00000003),   # seq wrapped; sign 0 (cyc1=0 branch)
    (0x00C0FFEE, 0xE0, 0x00C0FFEF),   # rsign=0x1F -> cyc2=31
]

import struct

# ---------------------------------------------------------------- msgpack (subset)
def mp(o):
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        if 0 <= o <= 0x7F: return bytes([o])
        if 0 <= o <= 0xFF: return b"\xcc" + bytes([o])
        if 0 <= o <= 0xFFFF: return b"\xcd" + struct.pack(">H", o)
        if 0 <= o <= 0xFFFFFFFF: return b"\xce" + struct.pack(">I", o)
        if o >= 0: return b"\xcf" + struct.pack(">Q", o)
        raise ValueError("negative ints not needed here")
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32: return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b
    if isinstance(o, (bytes, bytearray)):
        return b"\xc4" + bytes([len(o)]) + bytes(o)
    if isinstance(o, list):   # list of (k, v) pairs == ordered map
        assert len(o) < 16
        return bytes([0x80 | len(o)]) + b"".join(mp(k) + mp(v) for k, v in o)
    raise TypeError(o)

# ---------------------------------------------------------------- FPNN TCP-format message
def fpnn_quest(method, payload, seq=None):
    """12-byte header 'FPNN' ver=1 flag=0x80(msgpack) mtype ss psize(LE) [+seq LE] + method + payload."""
    m = method.encode()
    mtype = 1 if seq is not None else 0
    hdr = b"FPNN" + bytes([1, 0x80, mtype, len(m)]) + struct.pack("<I", len(payload))
    return hdr + (struct.pack("<I", seq) if seq is not None else b"") + m + payload

def fpnn_answer(seq, payload, status=0):
    return b"FPNN" + bytes([1, 0x80, 2, status]) + struct.pack("<I", len(payload)) + struct.pack("<I", seq) + payload

# ---------------------------------------------------------------- ARQ framing
VER = 0x02
T_DATA, T_ACKS, T_UNA, T_ECDH, T_HB, T_FSYNC, T_CLOSE, T_COMB, T_ASM = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F, 0x80, 0x81
F_DISC, F_FIRST = 0x01, 0x20

def pkg(ptype, flag, sign, seq, body=b""):
    return bytes([VER, ptype, flag, sign]) + struct.pack(">I", seq) + body

def section(stype, sflag, body):
    return bytes([stype, sflag]) + struct.pack(">H", len(body)) + body

# ---------------------------------------------------------------- chosen "random" inputs
FSEQ = 0x1A2B3C4D        # client's first reliable UDP seq (C++: (uint32)slack_mono_msec())
FSIGN = 0x5A             # its random sign               (C++: (uint8)slack_real_msec())
def S(seq):              # sign of every later package of this client
    return sign_cpp(FSEQ, FSIGN, seq)
MS = 1700000000123       # "now" in ms; discardable seqs below pretend to be (uint32)now_ms
SERVER_ACKS = [0x7E000005, 0x7E000007]   # server reliable seqs received out of order
SERVER_UNA = 0x7E000004                  # last in-order server seq received (inclusive)
PING_SEQ = 0x00000309                    # FPNN seq of the server's 'ping' quest

def show(title, b, note=""):
    print(f"## {title}  ({len(b)} bytes){('  ' + note) if note else ''}")
    h = b.hex()
    for i in range(0, len(h), 64):
        print("   " + " ".join(h[j:j + 2] for j in range(i, min(i + 64, len(h)), 2)))
    print()

if __name__ == "__main__":
    for ex in EXAMPLES:
        explain(*ex)
    print()
    # 1. first reliable package: DATA, flag 0x20, random sign, carrying a two-way quest
    q = fpnn_quest("enterRTCRoom",
                   mp([("pid", 1017), ("rid", 123456789), ("uid", 1001), ("token", "t0k3n")]),
                   seq=1)
    show("1 first reliable DATA (two-way enterRTCRoom)", pkg(T_DATA, F_FIRST, FSIGN, FSEQ, q),
         f"seq=0x{FSEQ:08X} sign=0x{FSIGN:02X}")

    # 2. discardable DATA carrying a one-way quest (sent after #1, so sign is computed)
    dseq = 0x65F3A1B2
    v = fpnn_quest("voice", mp([("timestamp", MS), ("data", bytes.fromhex("deadbeef")),
                                ("seq", 7), ("rid", 123456789)]))
    show("2 discardable DATA (one-way voice)", pkg(T_DATA, F_DISC, S(dseq), dseq, v),
         f"seq=0x{dseq:08X} sign=0x{S(dseq):02X}")

    # 3. ACKS (standalone; discardable)
    aseq = 0x65F3A1C6
    show("3 ACKS", pkg(T_ACKS, F_DISC, S(aseq), aseq, b"".join(struct.pack(">I", s) for s in SERVER_ACKS)),
         f"seq=0x{aseq:08X} sign=0x{S(aseq):02X}")

    # 4. UNA (standalone; discardable; must be exactly 12 bytes)
    useq = 0x65F3A1C7
    show("4 UNA", pkg(T_UNA, F_DISC, S(useq), useq, struct.pack(">I", SERVER_UNA)),
         f"seq=0x{useq:08X} sign=0x{S(useq):02X}")

    # 5. HEARTBEAT (discardable; 8-byte BE send time in ms)
    hseq = 0x65F3A200
    show("5 HEARTBEAT", pkg(T_HB, F_DISC, S(hseq), hseq, struct.pack(">Q", MS)),
         f"seq=0x{hseq:08X} sign=0x{S(hseq):02X}")

    # 6. CLOSE (discardable, header only)
    cseq = 0x65F3A2FF
    show("6 CLOSE", pkg(T_CLOSE, F_DISC, S(cseq), cseq), f"seq=0x{cseq:08X} sign=0x{S(cseq):02X}")

    # 7. second reliable package as COMBINED: UNA section + DATA section (answer to server 'ping')
    rseq = FSEQ + 1
    body = section(T_UNA, F_DISC, struct.pack(">I", SERVER_UNA)) + section(T_DATA, 0x00, fpnn_answer(PING_SEQ, mp([])))
    show("7 COMBINED(UNA + reliable DATA answer to ping)", pkg(T_COMB, 0x00, S(rseq), rseq, body),
         f"seq=0x{rseq:08X} sign=0x{S(rseq):02X}")

    # 8. same answer sent alone (what C++ emits when it is the only section)
    show("8 reliable DATA (answer to ping, alone)", pkg(T_DATA, 0x00, S(rseq), rseq, fpnn_answer(PING_SEQ, mp([]))),
         f"seq=0x{rseq:08X} sign=0x{S(rseq):02X}")

    # 9. how a peer would resend #1 and #8 together as ASSEMBLED (receive-side example)
    p1 = pkg(T_DATA, F_FIRST, FSIGN, FSEQ, q)
    p8 = pkg(T_DATA, 0x00, S(rseq), rseq, fpnn_answer(PING_SEQ, mp([])))
    asm = bytes([VER, T_ASM]) + b"".join(struct.pack(">H", len(p) - 1) + p[1:] for p in (p1, p8))
    show("9 ASSEMBLED(#1 + #8) (resend form)", asm)

    # 10. Encryption (ECDH package, then every datagram sealed whole with AES-CFB128 from the
    # IV): secp256k1, server secret 0x11 * 32, the client's ephemeral secret 0x22 * 32.
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    import hashlib
    server = ec.derive_private_key(int.from_bytes(b"\x11" * 32, "big"), ec.SECP256K1())
    client = ec.derive_private_key(int.from_bytes(b"\x22" * 32, "big"), ec.SECP256K1())
    nums = client.public_key().public_numbers()
    client_pub = nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
    shared = client.exchange(ec.ECDH(), server.public_key())        # the X coordinate
    for bits, params in ((128, 0x40), (256, 0xC0)):
        key = shared[:16] if bits == 128 else shared
        iv = hashlib.md5(shared).digest()
        show(f"10 ECDH body, AES-{bits}", bytes([params]) + client_pub)
        p8 = pkg(T_DATA, 0x00, S(rseq), rseq, fpnn_answer(PING_SEQ, mp([])))
        enc = Cipher(algorithms.AES(key), modes.CFB(iv)).encryptor()
        show(f"10 #8 sealed, AES-{bits}", enc.update(p8) + enc.finalize())
