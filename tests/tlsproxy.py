"""A TLS-terminating gRPC proxy (Debian's nginx) in front of a dev server, with certificates made here.

The dev server speaks plain gRPC; nginx on loopback terminates TLS, may require a client
certificate signed by the test CA, and may require an API key in the `authorization`
header. Everything lives in one directory that the test owns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pair(cert_path, key_path)


class Authority:
    """A certificate authority that signs server and client certificates."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pair = _write(directory, name, self.cert, self.key)

    def issue(self, stem: str, common: str, *, server: bool) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return _write(self.directory, stem, builder.sign(self.key, hashes.SHA256()), key)


@dataclass
class Proxy:
    """nginx terminating TLS on `port` and passing gRPC to `upstream`."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def log(self) -> str:
        return (self.directory / "error.log").read_text(errors="replace")


def _grpc_status(code: int, message: str) -> str:
    """nginx directives answering a gRPC call with `code` and `message` and no body."""
    return (
        f"add_header content-type application/grpc always; add_header grpc-status {code} always; "
        f'add_header grpc-message "{message}" always; return 200;'
    )


def start_proxy(
    directory: Path,
    *,
    port: int,
    upstream: str,
    server: Pair,
    client_ca: Path | None,
    api_key: str | None = None,
) -> Proxy:
    """Start nginx in the foreground; mTLS when `client_ca` is given, an API-key check when `api_key` is."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (make test installs Debian's nginx where it can)")
    for sub in ("tmp", "logs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    verify = f"ssl_client_certificate {client_ca};\n        ssl_verify_client on;" if client_ca else ""
    # A missing or wrong key answers as Temporal Cloud does: gRPC UNAUTHENTICATED (16).
    key_check = (
        f'if ($http_authorization != "Bearer {api_key}") {{ {_grpc_status(16, "Request unauthorized.")} }}'
        if api_key
        else ""
    )
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {directory}/tmp/body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {server.cert};
        ssl_certificate_key {server.key};
        {verify}
        # Refusals answer in gRPC terms, as a gRPC gateway should: UNAUTHENTICATED (16), with
        # nginx's own words for certificate errors and Temporal Cloud's for a bad API key.
        error_page 495 = @cert_rejected;
        error_page 496 = @cert_missing;
        location @cert_rejected {{ {_grpc_status(16, "The SSL certificate error")} }}
        location @cert_missing {{ {_grpc_status(16, "No required SSL certificate was sent")} }}
        grpc_read_timeout 300s;
        grpc_send_timeout 300s;
        client_max_body_size 0;
        location / {{
            {key_check}
            grpc_pass grpc://{upstream};
        }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited {process.returncode}: {(directory / 'error.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Proxy(directory, port, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("nginx did not listen within 20s")


@contextlib.contextmanager
def strict_tls_server(ca: Authority) -> Iterator[int]:
    """A TLS port that refuses, in the handshake itself, any client without a certificate from
    `ca`: how a Temporal server configured for mTLS refuses, rather than with a gRPC status."""
    import ssl
    import threading

    server = ca.issue("strict-server", "localhost", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert, server.key)
    context.load_verify_locations(ca.pair.cert)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as wrapped:
                    wrapped.recv(16)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()
