"""The emulator's own certificate authority and the server certificate it signs.

The real Azure SDK only talks TLS, so the emulator needs a certificate that
clients can trust by pointing ``connection_verify`` at one file, ``ca.pem``. The
CA is made once and kept; the server certificate is remade when the wanted host
names change, when it nears expiry, or when it no longer chains to the CA.

Several processes may start at once (``cefpipe up`` starts the emulator while a
test fixture starts another), so creation holds an exclusive lock on the
directory, and every file appears by atomic rename: a reader never sees half a
PEM file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cefpipe.settings import CA_FILE_NAME

logger = logging.getLogger(__name__)

CA_VALIDITY: Final = dt.timedelta(days=3650)
# The longest lifetime TLS clients still accept for a server certificate.
SERVER_VALIDITY: Final = dt.timedelta(days=397)
RENEW_BEFORE: Final = dt.timedelta(days=30)

CA_NAME: Final = "cefpipe local emulator CA"

SanEntry = x509.DNSName | x509.IPAddress
PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA and the server certificate live, all PEM."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, certs_dir: Path) -> TlsFiles:
        return cls(
            ca_cert=certs_dir / CA_FILE_NAME,
            ca_key=certs_dir / "ca-key.pem",
            server_cert=certs_dir / "emulator.pem",
            server_key=certs_dir / "emulator-key.pem",
        )


def ensure_tls_files(
    certs_dir: Path,
    hostnames: Sequence[str],
    *,
    now: dt.datetime | None = None,
) -> TlsFiles:
    """Make sure a usable CA and server certificate exist; create what is missing.

    Safe to call from several processes at once and on every start-up.

    Args:
        certs_dir: directory for the PEM files; created (mode 0700) if absent.
        hostnames: names and IP addresses the server certificate must cover.
        now: the current time, for tests; defaults to the clock.

    Returns:
        The paths of the four files, all present and consistent.
    """
    if not hostnames:
        raise ValueError("the server certificate needs at least one host name")
    now = now or dt.datetime.now(dt.UTC)
    files = TlsFiles.in_dir(certs_dir)
    certs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    with _exclusive_lock(certs_dir / ".lock"):
        ca_cert, ca_key = _load_or_create_ca(files, now)
        _ensure_server_cert(files, ca_cert, ca_key, hostnames, now)
    return files


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock so only one process creates files at a time."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_or_create_ca(
    files: TlsFiles, now: dt.datetime
) -> tuple[x509.Certificate, PrivateKey]:
    existing = _load_pair(files.ca_cert, files.ca_key)
    if existing is not None and _valid_for_a_while(existing[0], now):
        return existing

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_ca_cert(key, now)
    _write_pair(files.ca_cert, files.ca_key, cert, key)
    logger.info("created local CA %s", files.ca_cert)
    return cert, key


def _ensure_server_cert(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    hostnames: Sequence[str],
    now: dt.datetime,
) -> None:
    wanted = _san_entries(hostnames)
    existing = _load_pair(files.server_cert, files.server_key)
    if existing is not None and _server_cert_fits(existing[0], ca_cert, wanted, now):
        return

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_server_cert(key, ca_cert, ca_key, hostnames, now)
    _write_pair(files.server_cert, files.server_key, cert, key)
    logger.info("created server certificate for %s", ", ".join(hostnames))


def _server_cert_fits(
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    wanted: set[SanEntry],
    now: dt.datetime,
) -> bool:
    """True when the certificate is signed by this CA, covers ``wanted`` and lasts."""
    try:
        cert.verify_directly_issued_by(ca_cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(sans.value) == wanted and _valid_for_a_while(cert, now)


def _valid_for_a_while(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now < cert.not_valid_after_utc - RENEW_BEFORE


def _san_entries(hostnames: Sequence[str]) -> set[SanEntry]:
    """IP SANs for addresses, DNS SANs for everything else."""
    entries: set[SanEntry] = set()
    for name in hostnames:
        try:
            entries.add(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.add(x509.DNSName(name))
    return entries


def _build_ca_cert(key: PrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _build_server_cert(
    key: PrivateKey,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    hostnames: Sequence[str],
    now: dt.datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    ca_public_key = ca_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(sorted(_san_entries(hostnames), key=str)),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _load_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, PrivateKey] | None:
    """The certificate and its key, or None when either is missing or unusable."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if key.public_key() != cert.public_key():
        return None
    return cert, key


def _write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: PrivateKey
) -> None:
    """Write the key first: a reader holding the new certificate finds its key."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(key_path, key_pem, mode=0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary file beside ``path``, then rename it into place."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
