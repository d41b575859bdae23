"""A TLS front for a plaintext TCP service, as a Temporal frontend behind mTLS, plus the certificates for it.

The proxy terminates TLS (ALPN h2, as gRPC needs), optionally demands a client certificate signed by a given CA, and
then copies bytes both ways to the dev server. Certificates come from the `openssl` command line."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Identity:
    cert: Path
    key: Path


class CertificateAuthority:
    def __init__(self, directory: Path, name: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.cert, self.key = directory / f"{name}.crt", directory / f"{name}.key"
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            self.key,
            "-out",
            self.cert,
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
        )

    def issue(self, name: str, san: str) -> Identity:
        key, csr, cert = (self.directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(
            f"subjectAltName={san}\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            f"/CN={name}",
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            self.cert,
            "-CAkey",
            self.key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "1",
            "-extfile",
            extensions,
        )
        return Identity(cert, key)


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class TlsProxy:
    """Listens on 127.0.0.1 (a free port) for as long as the `with` block; `refusals` holds failed handshakes."""

    def __init__(self, target: str, server: Identity, client_ca: Path | None):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(server.cert, server.key)
        self.context.set_alpn_protocols(["h2"])
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self.refusals: list[str] = []
        self._refused = threading.Event()

    def __enter__(self) -> "TlsProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def refused(self, within: float = 30.0) -> bool:
        """Whether a handshake has failed, waiting up to `within` seconds: a client may give up (its own timeout,
        under load) before the proxy's thread has read its first bytes, so a refusal can land after its error."""
        return self._refused.wait(within)

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.refusals.append(str(exc))
            self._refused.set()
            raw.close()
            return
        self.accepted += 1
        upstream = socket.create_connection(self.target)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.close()
            except OSError:
                pass
