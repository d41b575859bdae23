"""How a provider's answer becomes a Temporal outcome: refusals fail the step at once, outages retry with backoff.

A 4xx other than 429 will not get better by retrying (bad credentials, unknown channel, invalid field); 429 waits
for the provider's Retry-After; 5xx and network errors retry on the activity's policy. Messages carry the
provider's error text, never the request (which holds credentials).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

REFUSED = "ActionRefused"


def provider_error(
    provider: str, status: int | None, detail: str, retry_after: str | None = None, refused: bool = False
) -> ApplicationError:
    """`refused` is for APIs that answer 200 with an error (Slack's `ok: false`)."""
    text = f"{provider}: {'HTTP ' + str(status) + ': ' if status and status >= 300 else ''}{detail}"[:1000]
    if refused or (status is not None and 400 <= status < 500 and status != 429):
        return ApplicationError(text, type=REFUSED, non_retryable=True)
    delay = None
    if status == 429 and retry_after:
        try:
            delay = timedelta(seconds=max(float(retry_after), 0.1))
        except ValueError:
            delay = None
    return ApplicationError(text, type="ActionUnavailable", next_retry_delay=delay)


def missing_credentials(provider: str, detail: str) -> ApplicationError:
    return ApplicationError(f"{provider}: {detail}", type=REFUSED, non_retryable=True)
