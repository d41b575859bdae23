"""Slack, through slack-sdk: one message per action, found again by its metadata so a retry never posts twice.

The message carries `metadata.event_payload.ktx_key`; before posting, the channel's recent history is searched for
it (Slack has no idempotency keys). Updates edit that message (`chat.update` with the kept `ts`); a failure adds a
thread reply; deletion edits it to say the object is gone. Incoming webhooks can only post.
"""

from __future__ import annotations

from pydantic import BaseModel
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from temporalio import activity

from activities.actions.errors import missing_credentials, provider_error
from activities.metrics import counted_action
from activities.stores.secrets import SecretNotFound, SecretProvider
from domain.documents import SecretRef

METADATA_EVENT = "ktx_action"


class SlackPostInput(BaseModel):
    secret_ref: SecretRef
    key: str
    channel: str | None = None
    text: str
    ts: str = ""
    thread_text: str = ""


class SlackPostResult(BaseModel):
    ts: str = ""
    channel: str = ""
    link: str = ""


class SlackActivities:
    def __init__(self, secrets: SecretProvider, api_url: str = "https://slack.com/api/"):
        self.secrets = secrets
        self.api_url = api_url

    def _credentials(self, ref: SecretRef) -> dict[str, bytes]:
        try:
            return self.secrets.get(ref)
        except SecretNotFound as exc:
            raise missing_credentials("slack", str(exc)) from exc

    @activity.defn
    @counted_action("slack")
    async def slack_post(self, input: SlackPostInput) -> SlackPostResult:
        """Idempotent: posts once (found again by metadata), then edits the same message."""
        creds = self._credentials(input.secret_ref)
        if creds.get("webhookUrl") and not creds.get("token"):
            return self._webhook(creds["webhookUrl"].decode(), input)
        if not creds.get("token"):
            raise missing_credentials("slack", f"Secret {input.secret_ref.name} has neither token nor webhookUrl")
        client = WebClient(token=creds["token"].decode(), base_url=self.api_url)
        try:
            channel, ts = input.channel or "", input.ts
            if ts:
                client.chat_update(channel=channel, ts=ts, text=input.text)
            else:
                channel, ts = self._find_or_post(client, input)
            if input.thread_text:
                client.chat_postMessage(channel=channel, thread_ts=ts, text=input.thread_text)
            link = client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink", "")
        except SlackApiError as exc:
            response = exc.response
            # Slack answers most refusals with HTTP 200 and `ok: false` (invalid_auth, channel_not_found, ...).
            raise provider_error(
                "slack",
                response.status_code,
                str(response.get("error") or exc),
                response.headers.get("Retry-After") or response.headers.get("retry-after"),
                refused=response.status_code == 200,
            ) from None
        return SlackPostResult(ts=ts, channel=channel, link=link)

    def _channel_id(self, client: WebClient, channel: str) -> str:
        """conversations.history takes a conversation ID; Promise authors write `#name` (needs channels:read)."""
        if not channel.startswith("#"):
            return channel
        cursor = None
        while True:
            page = client.conversations_list(
                types="public_channel,private_channel", limit=1000, cursor=cursor, exclude_archived=True
            )
            for found in page.get("channels", []):
                if found.get("name") == channel[1:]:
                    return found["id"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise provider_error("slack", 404, f"channel_not_found: {channel}", refused=True)

    def _find_or_post(self, client: WebClient, input: SlackPostInput) -> tuple[str, str]:
        channel = self._channel_id(client, input.channel or "")
        history = client.conversations_history(channel=channel, include_all_metadata=True, limit=200)
        for message in history.get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("ktx_key") == input.key:
                return channel, message["ts"]
        posted = client.chat_postMessage(
            channel=channel,
            text=input.text,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"ktx_key": input.key}},
        )
        return posted["channel"], posted["ts"]

    def _webhook(self, url: str, input: SlackPostInput) -> SlackPostResult:
        if input.ts:
            return SlackPostResult(ts=input.ts, channel="webhook")  # a webhook message cannot be edited
        response = WebhookClient(url).send(text=input.text)
        if response.status_code >= 300:
            raise provider_error("slack", response.status_code, response.body, response.headers.get("Retry-After"))
        return SlackPostResult(ts="webhook", channel="webhook")
