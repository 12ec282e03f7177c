#!/usr/bin/env python3
"""Independent generator for the byte vectors pinned in `tests.rs`.

Self-contained: it needs only the `msgpack` and `cryptography` packages and fetches nothing.
It builds FPNN packets with `struct` + `msgpack.packb` and does the ECDH / MD5 / AES-CFB128
steps with `cryptography`, so the Rust tests compare against bytes that our own encoder did not
produce. Run `python3 vectors.py` and paste the printed constants into `tests.rs` if a vector
has to change.
"""

import hashlib
import json
import struct

import msgpack
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # CFB moved to the "decrepit" namespace in cryptography 47.
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:
    from cryptography.hazmat.primitives.ciphers.modes import CFB


def header(flag, mtype, ss, psize):
    return b"FPNN" + struct.pack("<BBBBI", 1, flag, mtype, ss, psize)


def quest(seq, method, body, flag=0x80):
    payload = msgpack.packb(body, use_bin_type=True) if flag == 0x80 else body
    m = method.encode()
    h = header(flag, 0 if seq is None else 1, len(m), len(payload))
    return h + (b"" if seq is None else struct.pack("<I", seq)) + m + payload


def answer(seq, body, status=0, flag=0x80):
    payload = msgpack.packb(body, use_bin_type=True) if flag == 0x80 else body
    return header(flag, 2, status, len(payload)) + struct.pack("<I", seq) + payload


def secret(label):
    return hashlib.sha256(label.encode()).digest()


def xy(pub):
    n = pub.public_numbers()
    return n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")


def cfb(key, iv, data):
    enc = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def emit(name, data):
    print(f'const {name}: &str = "{data.hex()}";')


FRAMES = {
    "ONEWAY": quest(None, "voice", {"rid": 1001, "seq": 5, "timestamp": 1700000000000,
                                    "data": b"\x01\x02\x03"}),
    "TWOWAY": quest(1, "auth", {"pid": 11000001, "uid": -5, "token": "abc", "version": "rust"}),
    "ANSWER_OK": answer(1, {"ok": True, "gate": "x"}),
    "ANSWER_ERR": answer(2, {"code": 20004, "ex": "unknown method"}, status=1),
    "EMPTY_QUEST": quest(3, "*ping", {}),
    "EMPTY_ANSWER": answer(3, {}),
    "JSON_ANSWER": answer(9, json.dumps({"ts": 1700000000000, "x": [1, -2, 3.5, None, True, "s"]},
                                        separators=(",", ":")).encode(), flag=0x40),
}

# The frame every crypto vector encrypts (twice, to show stream continuity / package IV reset).
CRYPTO_FRAME = quest(7, "sendmsg", {"to": 42, "mid": 1234567890123, "msg": "hello fpnn"})


def crypto(curve_name, curve):
    tag = curve_name.upper()
    server = ec.derive_private_key(int.from_bytes(secret(f"fpnn server {curve_name}"), "big"), curve)
    client = ec.derive_private_key(int.from_bytes(secret(f"fpnn client {curve_name}"), "big"), curve)
    shared = client.exchange(ec.ECDH(), server.public_key())
    assert shared == server.exchange(ec.ECDH(), client.public_key())
    iv = hashlib.md5(shared).digest()
    emit(f"{tag}_SERVER_SECRET", secret(f"fpnn server {curve_name}"))
    emit(f"{tag}_CLIENT_SECRET", secret(f"fpnn client {curve_name}"))
    emit(f"{tag}_SERVER_PUBLIC", xy(server.public_key()))
    emit(f"{tag}_CLIENT_PUBLIC", xy(client.public_key()))
    emit(f"{tag}_SHARED", shared)
    emit(f"{tag}_IV", iv)
    pem = server.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    print(f"const {tag}_SERVER_PEM: &str = {json.dumps(pem.decode())};")
    for bits in (128, 256):
        key = shared[: bits // 8]
        stream = cfb(key, iv, CRYPTO_FRAME + CRYPTO_FRAME)
        one = cfb(key, iv, CRYPTO_FRAME)
        package = struct.pack("<I", len(CRYPTO_FRAME)) + one
        emit(f"{tag}_{bits}_STREAM", stream)
        emit(f"{tag}_{bits}_PACKAGE", package + package)
        for stream_mode in (False, True):
            body = {"publicKey": xy(client.public_key()), "streamMode": stream_mode, "bits": bits}
            mode = "STREAM" if stream_mode else "PACKAGE"
            emit(f"{tag}_{bits}_{mode}_KEY_QUEST", quest(1, "*key", body))


for name, data in FRAMES.items():
    emit(name, data)
emit("CRYPTO_FRAME", CRYPTO_FRAME)
crypto("secp256k1", ec.SECP256K1())
crypto("secp256r1", ec.SECP256R1())
