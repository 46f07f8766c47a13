"""The local CA and server certificate: made once, reused, remade when needed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from emulator.certs import SERVER_VALIDITY, TlsFiles, ensure_tls_files

HOSTS = ("localhost", "127.0.0.1", "::1", "emulator")


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(entry.value) for entry in names}


def test_first_run_creates_ca_and_server_cert_with_ip_and_dns_sans(
    tmp_path: Path,
) -> None:
    files = ensure_tls_files(tmp_path / "certs", HOSTS)

    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["emulator", "localhost"]
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert files.ca_cert == tmp_path / "certs" / "ca.pem"
    assert files.ca_key == tmp_path / "certs" / "ca-key.pem"
    for key in (files.ca_key, files.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake in memory; raises ssl.SSLError if the client distrusts."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    while not all(done.values()):
        for name, side in (("client", client_side), ("server", server_side)):
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())


@pytest.mark.parametrize("hostname", HOSTS)
def test_server_cert_is_trusted_through_the_ca_for_each_host(
    tmp_path: Path, hostname: str
) -> None:
    files = ensure_tls_files(tmp_path, HOSTS)
    client = ssl.create_default_context(cafile=str(files.ca_cert))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.server_cert, files.server_key)

    _handshake(client, server, hostname)


def test_server_cert_is_not_trusted_for_other_hosts(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path, HOSTS)
    client = ssl.create_default_context(cafile=str(files.ca_cert))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.server_cert, files.server_key)

    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server, "example.org")


def test_later_runs_reuse_the_files(tmp_path: Path) -> None:
    first = ensure_tls_files(tmp_path, HOSTS)
    before = {path: path.read_bytes() for path in vars(first).values()}

    second = ensure_tls_files(tmp_path, HOSTS)

    assert {path: path.read_bytes() for path in vars(second).values()} == before


def test_changed_hostnames_remake_only_the_server_cert(tmp_path: Path) -> None:
    first = ensure_tls_files(tmp_path, HOSTS)
    ca_before = first.ca_cert.read_bytes()

    second = ensure_tls_files(tmp_path, ("localhost", "sentinel.test"))

    assert second.ca_cert.read_bytes() == ca_before
    assert _sans(second.server_cert) == {"localhost", "sentinel.test"}


def test_server_cert_near_expiry_is_remade(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path, HOSTS)
    before = files.server_cert.read_bytes()

    later = dt.datetime.now(dt.UTC) + SERVER_VALIDITY - dt.timedelta(days=10)
    ensure_tls_files(tmp_path, HOSTS, now=later)

    assert files.server_cert.read_bytes() != before


def test_a_new_ca_brings_a_new_server_cert(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path, HOSTS)
    files.ca_key.unlink()

    ensure_tls_files(tmp_path, HOSTS)

    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(
        files.server_cert.read_bytes()
    ).verify_directly_issued_by(ca)


def test_racing_processes_agree_on_one_consistent_set(tmp_path: Path) -> None:
    create = (
        "import sys; from pathlib import Path; from emulator.certs import "
        "ensure_tls_files; ensure_tls_files(Path(sys.argv[1]), sys.argv[2:])"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", create, str(tmp_path), *HOSTS])
        for _ in range(4)
    ]

    assert [racer.wait() for racer in racers] == [0, 0, 0, 0]
    files = TlsFiles.in_dir(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [".lock"]
