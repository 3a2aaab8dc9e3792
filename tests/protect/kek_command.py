"""A stand-in for a KMS: a real ``kek_command`` the tests run as a subprocess.

Usage: ``python kek_command.py KEYDIR (wrap|unwrap) VERSION CONTEXT`` with base64 on stdin and
stdout. Its master keys are ``KEYDIR/kms-v<N>.key``, made on first use of a version, the way a
KMS adds key versions. Every call is appended to ``KEYDIR/calls.log`` so tests can count spawns.
``KEYDIR/fail`` makes every call fail (exit 3), ``KEYDIR/slow`` makes it hang.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def main(argv: list[str]) -> int:
    keydir, verb, version, context = Path(argv[0]), argv[1], argv[2], argv[3]
    with (keydir / "calls.log").open("a") as log:
        log.write(f"{verb} {version} {context}\n")
    if (keydir / "slow").exists():
        time.sleep(30)
    if (keydir / "fail").exists():
        print("kms: access denied for key keeptrail (simulated)", file=sys.stderr)
        print("second line that must not be shown", file=sys.stderr)
        return 3
    path = keydir / f"kms-v{version}.key"
    if not path.exists():
        if verb != "wrap":
            print(f"kms: no key version {version}", file=sys.stderr)
            return 4
        path.write_bytes(os.urandom(32))
    kek = AESGCM(path.read_bytes())
    data = base64.b64decode(sys.stdin.read().strip())
    if verb == "wrap":
        nonce = os.urandom(12)
        out = nonce + kek.encrypt(nonce, data, context.encode())
    else:
        try:
            out = kek.decrypt(data[:12], data[12:], context.encode())
        except InvalidTag:
            print("kms: unwrap failed: ciphertext does not authenticate", file=sys.stderr)
            return 1
    sys.stdout.write(base64.b64encode(out).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
