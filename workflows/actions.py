"""Off-platform actions as workflow steps: run after a pipeline's containers, updated when the object's status
changes, undone when it is deleted. Each step is an activity with its own retry policy; what it did (message ts,
service id, ticket id) is recorded and reused, so retries and restarts never duplicate anything outside."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.actions.pagerduty import IncidentInput, PagerDutyActivities, RemoveRotaInput, RotaInput
    from activities.actions.slack import SlackActivities, SlackPostInput
    from activities.actions.zendesk import TicketInput, ZendeskActivities
    from domain.actions import Action, ActionRecord, idempotency_key, rendered
    from workflows import options
    from workflows.delivery import now_iso


async def _call(activity: Any, arg: Any) -> Any:
    return await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=options.ACTION_TIMEOUT, retry_policy=options.ACTION_RETRY
    )


async def _update_slack_post(action: Action, record: ActionRecord, text: str, thread_text: str = "") -> None:
    """Edit the message an action posted, in the channel Slack answered with (a status change, or the delete)."""
    assert action.slack is not None
    await _call(
        SlackActivities.slack_post,
        SlackPostInput(
            secret_ref=action.slack.secret_ref,
            key=record.key,
            channel=record.refs.get("channel"),
            text=text,
            ts=record.external_id,
            thread_text=thread_text,
        ),
    )


def _reason(exc: ActivityError) -> str:
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)


async def perform(
    action: Action, record: ActionRecord | None, pipeline: str, uid: str, obj: dict[str, Any]
) -> ActionRecord:
    """Do the action (or, when it was done before, update the same external object). Never raises: a failure is in
    the record's state and message."""
    action = rendered(action, obj)
    record = record or ActionRecord(
        pipeline=pipeline, name=action.name, provider=action.provider, key=idempotency_key(uid, pipeline, action.name)
    )
    record = record.model_copy(update={"spec": action.model_dump(mode="json", by_alias=True, exclude_none=True)})
    try:
        if action.slack is not None:
            s = action.slack
            posted = await _call(
                SlackActivities.slack_post,
                SlackPostInput(
                    secret_ref=s.secret_ref,
                    key=record.key,
                    channel=record.refs.get("channel") or s.channel,
                    text=s.text,
                    ts=record.external_id,
                ),
            )
            update = {"external_id": posted.ts, "link": posted.link, "refs": {**record.refs, "channel": posted.channel}}
        elif action.pagerduty is not None:
            p = action.pagerduty
            rota = await _call(
                PagerDutyActivities.pagerduty_ensure_rota,
                RotaInput(secret_ref=p.secret_ref, service=p.service, description=p.description, schedule=p.schedule),
            )
            update = {"external_id": rota.service_id, "link": rota.link, "refs": {**record.refs, **rota.created}}
        else:
            z = action.zendesk
            assert z is not None
            ticket = await _call(
                ZendeskActivities.zendesk_ticket,
                TicketInput(
                    secret_ref=z.secret_ref,
                    external_id=record.key,
                    subject=z.subject,
                    comment=z.comment,
                    priority=z.priority,
                    tags=z.tags,
                    ticket_id=record.external_id,
                ),
            )
            update = {"external_id": ticket.ticket_id, "link": ticket.link}
    except ActivityError as exc:
        return record.model_copy(update={"state": "Failed", "message": _reason(exc), "updated_at": now_iso()})
    return record.model_copy(update={**update, "state": "Succeeded", "message": "", "updated_at": now_iso()})


async def report_outcome(record: ActionRecord, failed: bool, message: str, obj: dict[str, Any]) -> ActionRecord:
    """After a configure run: edit the Slack message to the new status (and reply in its thread on failure), page on
    failure and resolve the page on recovery."""
    action = Action.model_validate(record.spec)
    phase = "Failed" if failed else "Reconciled"
    try:
        if action.slack is not None and record.external_id and action.slack.update_on_status_change:
            text = f"{action.slack.text}\nStatus: {phase}" + (f" ({message})" if failed and message else "")
            await _update_slack_post(
                action, record, text, thread_text=message if failed and action.slack.thread_on_failure else ""
            )
        elif action.pagerduty is not None and action.pagerduty.incident_on_failure:
            p = action.pagerduty
            if failed and record.incident != "triggered":
                await _call(
                    PagerDutyActivities.pagerduty_incident,
                    IncidentInput(
                        secret_ref=p.secret_ref,
                        action="trigger",
                        dedup_key=record.key,
                        summary=f"{p.service}: {message}"[:1024],
                        source=f"ktx/{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}",
                        severity=p.severity,
                    ),
                )
                return record.model_copy(update={"incident": "triggered", "updated_at": now_iso()})
            if not failed and record.incident == "triggered":
                await _call(
                    PagerDutyActivities.pagerduty_incident,
                    IncidentInput(secret_ref=p.secret_ref, action="resolve", dedup_key=record.key),
                )
                return record.model_copy(update={"incident": "resolved", "updated_at": now_iso()})
    except ActivityError as exc:
        return record.model_copy(update={"message": f"status update failed: {_reason(exc)}", "updated_at": now_iso()})
    return record


async def compensate(record: ActionRecord, obj: dict[str, Any]) -> ActionRecord:
    """On delete: the message says the object is gone, pages are resolved and the rota this platform created is
    removed, the ticket is solved. A refusal is recorded and deletion goes on: the platform never hangs on a SaaS."""
    action = Action.model_validate(record.spec)
    name = f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
    try:
        if action.slack is not None and record.external_id:
            await _update_slack_post(action, record, f"{action.slack.text}\nStatus: Deleted ({name} was deleted)")
        elif action.pagerduty is not None:
            p = action.pagerduty
            if record.incident == "triggered":
                await _call(
                    PagerDutyActivities.pagerduty_incident,
                    IncidentInput(secret_ref=p.secret_ref, action="resolve", dedup_key=record.key),
                )
            await _call(
                PagerDutyActivities.pagerduty_remove_rota, RemoveRotaInput(secret_ref=p.secret_ref, created=record.refs)
            )
        elif action.zendesk is not None and record.external_id:
            await _call(
                ZendeskActivities.zendesk_ticket,
                TicketInput(
                    secret_ref=action.zendesk.secret_ref,
                    external_id=record.key,
                    subject=action.zendesk.subject,
                    comment=f"{name} was deleted; closing.",
                    ticket_id=record.external_id,
                    solve=True,
                ),
            )
    except ActivityError as exc:
        return record.model_copy(update={"message": f"compensation failed: {_reason(exc)}", "updated_at": now_iso()})
    return record.model_copy(
        update={
            "state": "Compensated",
            "incident": "resolved" if record.incident else "",
            "message": "",
            "updated_at": now_iso(),
        }
    )
