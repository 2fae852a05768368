"""Development certificates for the TLS stack (deploy/compose.tls.yaml), made with openssl.

    python deploy/certificates.py deploy/tls     # what `make compose-certs` runs

Writes into the directory:

- ``ca.pem`` / ``ca.key``: a CA of its own, which every container trusts;
- ``server.pem`` / ``server.key``: the servers' certificate (``SIMCONFIG_TLS_CERT``/``KEY``),
  the chain up to that CA, for the name ``server`` (how the gateway reaches the replicas) and
  ``localhost`` / ``127.0.0.1`` (how the image's HEALTHCHECK reaches its own server); it also
  allows client authentication, since under mutual TLS the health check presents it;
- ``gateway.pem`` / ``gateway.key``: the gateway's certificate, for its HTTPS listener
  (``localhost``, ``127.0.0.1``) and as the client certificate it shows the servers.

For trying the stack out only: the keys are left readable by every user, because the
containers' users (the image's uid 10001, Envoy's) are not the one who made them. In
production, use certificates from your own CA and give the keys to those users alone.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

DAYS = "365"
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
SERVER_EXTENSIONS = (
    "subjectAltName=DNS:server,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
)
GATEWAY_EXTENSIONS = (
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
)


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"openssl {args[0]} failed: {done.stderr.strip()}")


def _leaf(directory: Path, name: str, extensions: str, scratch: Path) -> None:
    """``name``.pem (leaf then CA: the full chain) and ``name``.key, signed by the CA."""
    request, config, leaf = scratch / f"{name}.csr", scratch / f"{name}.ext", scratch / name
    config.write_text(extensions)
    key = directory / f"{name}.key"
    _openssl("req", "-new", *EC_KEY, "-keyout", str(key), "-out", str(request),
             "-subj", f"/CN=simconfig {name}")  # fmt: skip
    _openssl("x509", "-req", "-in", str(request), "-CA", str(directory / "ca.pem"),
             "-CAkey", str(directory / "ca.key"), "-CAcreateserial",
             "-CAserial", str(scratch / "ca.srl"), "-out", str(leaf), "-days", DAYS,
             "-extfile", str(config))  # fmt: skip
    (directory / f"{name}.pem").write_bytes(leaf.read_bytes() + (directory / "ca.pem").read_bytes())
    key.chmod(0o644)  # see the module's docstring: development only


def make(directory: Path) -> None:
    """Writes the CA, the servers' and the gateway's certificates into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *EC_KEY, "-keyout", str(directory / "ca.key"),
             "-out", str(directory / "ca.pem"), "-days", DAYS, "-subj", "/CN=simconfig dev CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        _leaf(directory, "server", SERVER_EXTENSIONS, Path(scratch))
        _leaf(directory, "gateway", GATEWAY_EXTENSIONS, Path(scratch))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python deploy/certificates.py DIRECTORY")
    make(Path(sys.argv[1]))
    print(f"wrote ca, server and gateway certificates into {sys.argv[1]}")
