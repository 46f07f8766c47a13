"""What the ingest tests share: a certificate, a sender, a patient wait, metrics."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY

CEF_LINE = b"<134>Jan 15 09:07:03 fw-1 CEF:0|Acme|Wall|1.0|100|Allowed|3|src=192.0.2.1"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for localhost, written into ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def send_tcp(port: int, payload: bytes, tls: bool = False) -> None:
    """Connect to 127.0.0.1, write ``payload``, close."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(payload)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def wait_until(
    condition: Callable[[], bool], what: str, timeout_secs: float = 60.0
) -> None:
    """Return once ``condition()`` holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_secs:.0f}s: {what}")
        await asyncio.sleep(0.05)


def metric(name: str, **labels: str) -> float:
    """A sample's current value in the process's registry, 0 if never set."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
