"""A stand-in for an Amazon S3 bucket in a region other than us-east-1, as AWS documents its answers: GetBucketLocation
(`GET /<bucket>?location`) names the bucket's LocationConstraint whatever region the request was signed for, and any
other request signed for another region is refused with 400 AuthorizationHeaderMalformed naming the right one. Only
the calls Kratix's write-permission probe makes are served (CreateMultipartUpload, AbortMultipartUpload). SeaweedFS
cannot stand in here: it reports every bucket's location as empty and accepts any region's signature.

`refuse_location` answers the location request as an identity without `s3:GetBucketLocation` gets it: 403
AccessDenied, the bucket's region in `x-amz-bucket-region` (AWS sends it on such refusals)."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/[0-9]{8}/(?P<region>[^/]+)/s3/aws4_request")
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class RegionalBucket:
    def __init__(self, bucket: str, region: str, refuse_location: bool = False):
        self.bucket, self.region, self.refuse_location = bucket, region, refuse_location
        self.signed_for: list[str] = []  # the region of each request, in order
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, extra: str = "", headers: dict[str, str] | None = None) -> None:
                self._answer(status, f"<Error><Code>{code}</Code><Message>{code}</Message>{extra}</Error>", headers)

            def _handle(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                query = parse_qs(url.query, keep_blank_values=True)
                match = _SCOPE.search(self.headers.get("Authorization", ""))
                signed = match.group("region") if match else ""
                owner.signed_for.append(signed)
                if url.path.strip("/").split("/", 1)[0] != owner.bucket:
                    return self._error(404, "NoSuchBucket")
                if self.command == "GET" and "location" in query:
                    if owner.refuse_location:
                        return self._error(403, "AccessDenied", headers={"x-amz-bucket-region": owner.region})
                    return self._answer(200, f'<LocationConstraint xmlns="{_NS}">{owner.region}</LocationConstraint>')
                if signed != owner.region:
                    return self._error(
                        400,
                        "AuthorizationHeaderMalformed",
                        f"<Region>{owner.region}</Region>",
                        {"x-amz-bucket-region": owner.region},
                    )
                if self.command == "POST" and "uploads" in query:
                    key = url.path.split("/", 2)[-1]
                    return self._answer(
                        200,
                        f'<InitiateMultipartUploadResult xmlns="{_NS}"><Bucket>{owner.bucket}</Bucket>'
                        f"<Key>{key}</Key><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>",
                    )
                if self.command == "DELETE" and "uploadId" in query:
                    return self._answer(204)
                return self._error(501, "NotImplemented")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's names

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "RegionalBucket":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
