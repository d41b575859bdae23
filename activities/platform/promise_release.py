"""A PromiseRelease's side effects: fetch its Promise over HTTP(S), install it through the platform's own apply (the
path `ktx apply` takes), and delete what it installed.

The Authorization header is read from the Secret here, inside the activity (or the API's admission check), and sent
only to the source: it never enters a workflow's input, result or history, a log line, or the release's status.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel
from temporalio import activity

from activities.stores.secrets import SecretNotFound, SecretProvider
from domain import promise_release as pr
from domain.documents import SecretRef
from domain.errors import Conflict, InvalidDocument, NotFound

# Kratix's fetcher waits 10 s for the whole answer.
FETCH_TIMEOUT_S = 10.0
# A Promise is one document the platform stores whole: the API's limit per document (service/platform.py).
FETCH_MAX_BYTES = 1024 * 1024
# Enough for http->https and a CDN hop or two; a loop ends here.
FETCH_MAX_REDIRECTS = 5


class FetchFailed(Exception):
    """Why the source gave no Promise: unreachable, not 200, too large, or not exactly one Promise document."""


def authorization_header(secrets: SecretProvider, ref: SecretRef | None) -> str:
    """Kratix's rule: the Secret's key `authorizationHeader`, or no header. A missing Secret fails the fetch."""
    if ref is None:
        return ""
    try:
        data = secrets.get(ref)
    except SecretNotFound as exc:
        raise FetchFailed(f"failed to fetch data from secretRef: {exc}") from exc
    return data.get(pr.AUTHORIZATION_KEY, b"").decode(errors="replace").strip()


async def fetch_promise(url: str, authorization: str) -> dict[str, Any]:
    """GET the URL (http/https only, redirects bounded, body bounded as it streams) and read the one Promise it holds.
    httpx drops the Authorization header on a redirect to another host, so the credential goes to the source only."""
    headers = {"Authorization": authorization} if authorization else {}
    try:
        async with httpx.AsyncClient(
            timeout=FETCH_TIMEOUT_S, follow_redirects=True, max_redirects=FETCH_MAX_REDIRECTS, trust_env=False
        ) as client:
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise FetchFailed(f"failed to get Promise from URL: status code {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > FETCH_MAX_BYTES:
                        raise FetchFailed(f"failed to get Promise from URL: the body is over {FETCH_MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        # The message names the URL and the failure, never the headers sent.
        raise FetchFailed(f"failed to get url: {type(exc).__name__}: {exc}"[:500]) from None
    try:
        return pr.read_promise(bytes(body))
    except pr.FetchRefused as exc:
        raise FetchFailed(str(exc)) from None


class InstallReleaseInput(BaseModel):
    release: str
    version: str
    url: str
    secret_ref: SecretRef | None = None


class InstallReleaseResult(BaseModel):
    """`retry`: not installed for now (the Promise is still being deleted); nothing to report, look again soon."""

    outcome: Literal["installed", "exists", "adopt_version", "refused", "retry"]
    promise: str = ""
    version: str = ""
    reason: str = ""
    message: str = ""
    detail: str = ""  # for the event: what the fetch or the apply said
    action: str = ""


class DeleteReleasedInput(BaseModel):
    release: str


class DeleteReleasedResult(BaseModel):
    remaining: list[str]


class ReleaseOperations(Protocol):
    """What a release needs of the platform: the application service (service/platform.py's Platform), handed in
    by the worker so this module imports nothing above its layer."""

    async def list(self, kind: str, namespace: str | None = None, promise: str | None = None) -> Any: ...

    async def apply(self, document: dict[str, Any]) -> Any: ...

    async def delete(self, kind: str, name: str, namespace: str = "default", force: bool = False) -> Any: ...


def _released(promises: list[dict[str, Any]], release: str) -> list[dict[str, Any]]:
    return [
        p for p in promises if ((p.get("metadata") or {}).get("labels") or {}).get(pr.RELEASE_NAME_LABEL) == release
    ]


class PromiseReleaseActivities:
    def __init__(self, platform: ReleaseOperations, secrets: SecretProvider):
        self.platform = platform
        self.secrets = secrets

    @activity.defn
    async def install_promise_release(self, input: InstallReleaseInput) -> InstallReleaseResult:
        """Kratix's reconcile, one pass: a Promise of this release at the wanted version is left alone; else fetch,
        check the version label, create or update. Idempotent: a second pass applies an unchanged document."""
        promises = await self.platform.list("Promise")
        mine = _released(promises, input.release)
        live = [p for p in mine if "deletionTimestamp" not in p["metadata"]]
        if len(mine) > 1:
            names = ", ".join(sorted(p["metadata"]["name"] for p in mine))
            return InstallReleaseResult(
                outcome="refused",
                reason=pr.REASON_APPLY_FAILED,
                message=pr.MESSAGE_APPLY_FAILED,
                detail=f"expected 0 or 1 promises, got {len(mine)}: {names}",
            )
        if live and input.version and live[0]["metadata"].get("labels", {}).get(pr.PROMISE_VERSION) == input.version:
            return InstallReleaseResult(outcome="exists", promise=live[0]["metadata"]["name"], version=input.version)
        try:
            fetched = await fetch_promise(input.url, authorization_header(self.secrets, input.secret_ref))
        except FetchFailed as exc:
            return InstallReleaseResult(
                outcome="refused", reason=pr.REASON_FETCH_FAILED, message=pr.MESSAGE_FETCH_FAILED, detail=str(exc)
            )
        name = str((fetched.get("metadata") or {}).get("name") or "")
        check = pr.check_version(input.version, fetched)
        if not check.ok:
            return InstallReleaseResult(
                outcome="refused", promise=name, reason=check.reason, message=check.message, detail=check.message
            )
        if check.adopt:
            return InstallReleaseResult(outcome="adopt_version", promise=name, version=check.version)
        existing = next((p for p in promises if p["metadata"]["name"] == name), None)
        if existing is not None and "deletionTimestamp" in existing["metadata"]:
            return InstallReleaseResult(outcome="retry", promise=name, detail=f'promise "{name}" is being deleted')
        owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get(pr.RELEASE_NAME_LABEL)
        if owner not in (None, input.release):
            # Kratix's SetControllerReference refuses a Promise another release controls; one applied by hand is
            # taken over, as there.
            return InstallReleaseResult(
                outcome="refused",
                promise=name,
                reason=pr.REASON_APPLY_FAILED,
                message=pr.MESSAGE_APPLY_FAILED,
                detail=f'Failed to install Promise "{name}": it belongs to PromiseRelease "{owner}"',
                action="Failed",
            )
        document = pr.released_promise(input.release, fetched, existing)
        try:
            applied = await self.platform.apply(document)
        except Conflict as exc:
            return InstallReleaseResult(outcome="retry", promise=name, detail=str(exc)[:1000])
        except (InvalidDocument, NotFound, ValueError) as exc:
            return InstallReleaseResult(
                outcome="refused",
                promise=name,
                reason=pr.REASON_APPLY_FAILED,
                message=pr.MESSAGE_APPLY_FAILED,
                detail=f'Failed to install Promise "{name}": {exc}'[:1000],
                action="Invalid Promise" if isinstance(exc, InvalidDocument) else "Failed",
            )
        return InstallReleaseResult(outcome="installed", promise=name, version=check.version, action=applied.action)

    @activity.defn
    async def delete_released_promises(self, input: DeleteReleasedInput) -> DeleteReleasedResult:
        """Asks each Promise of the release to be deleted (once; a deleting one is left to finish) and says which
        remain, so the workflow looks again until none does."""
        mine = _released(await self.platform.list("Promise"), input.release)
        for promise in mine:
            if "deletionTimestamp" not in promise["metadata"]:
                try:
                    await self.platform.delete("Promise", promise["metadata"]["name"])
                except NotFound:
                    pass  # gone between the list and the delete
        return DeleteReleasedResult(remaining=sorted(p["metadata"]["name"] for p in mine))
