"""Off-platform actions against local stand-ins for Slack, PagerDuty and Zendesk, through the real slack-sdk,
pdpyras and httpx clients: exactly one message, rota and ticket through lost answers, 429s and 500s; updates reach
the same external objects; refusals fail the step at once; deletion compensates; no credential in any history."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from service.platform import Platform
from tests.integration.test_destinations import destination, git_store, writes_configmap
from tests.integration.test_state_store_credentials import histories_mention
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource
from tests.servers.saas import FakePagerDuty, FakeSlack, FakeZendesk

SLACK_TOKEN, PD_TOKEN, PD_ROUTING, ZD_TOKEN = (
    "xoxb-slack-secret-1",
    "pd-api-secret-2",
    "pd-routing-secret-3",
    "zd-secret-4",
)


def secret(name: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }


def actions_pipeline(zendesk_url: str) -> dict[str, Any]:
    notify = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "golden-path"},
        "spec": {
            "actions": [
                {
                    "name": "announce",
                    "slack": {
                        "secretRef": {"name": "slack"},
                        "channel": "#${spec.team}",
                        "text": "App ${metadata.name} (${spec.size}) is ready for ${spec.team}",
                    },
                },
                {
                    "name": "on-call",
                    "pagerduty": {
                        "secretRef": {"name": "pagerduty"},
                        "service": "${spec.team}-${metadata.name}",
                        "schedule": {"name": "${spec.team} rota", "users": ["lead@example.com"]},
                    },
                },
                {
                    "name": "ticket",
                    "zendesk": {
                        "secretRef": {"name": "zendesk"},
                        "subject": "Provision ${metadata.name}",
                        "comment": "Size ${spec.size} requested by ${spec.team}",
                        "tags": ["ktx"],
                    },
                },
            ]
        },
    }
    return notify


async def install(
    platform: Platform,
    git_remote: Path,
    slack: FakeSlack,
    pd: FakePagerDuty,
    zd: FakeZendesk,
    configure: list[dict[str, Any]],
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    for doc in (
        secret("slack", token=SLACK_TOKEN),
        secret("pagerduty", apiToken=PD_TOKEN, routingKey=PD_ROUTING),
        secret("zendesk", url=zd.url, email="ops@example.com", token=ZD_TOKEN),
    ):
        await platform.apply(doc)
    await platform.apply(promise("golden", "App", configure=configure))
    await platform.wait_condition("promise", "golden", "default", "Available", timeout=60)


def settings(slack: FakeSlack, pd: FakePagerDuty) -> dict[str, str]:
    return {"slack_api_url": slack.api_url, "pagerduty_api_url": pd.url, "pagerduty_events_url": pd.url}


async def test_golden_path_actions_happen_once_update_in_place_and_compensate(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    with (
        FakeSlack(SLACK_TOKEN) as slack,
        FakePagerDuty(PD_TOKEN, PD_ROUTING) as pd,
        FakeZendesk("ops@example.com", ZD_TOKEN) as zd,
    ):
        pd.add_user("lead@example.com")
        platform = await platform_factory(settings=settings(slack, pd))
        # A pipeline computes data and asks for an action itself, through /kratix/metadata/actions.yaml.
        render = writes_configmap()
        render["spec"]["containers"][0]["env"].append(
            {
                "name": "ACTIONS",
                "value": (
                    "- name: computed\n"
                    "  slack: {secretRef: {name: slack}, channel: '#audit', text: 'rendered {name} in {namespace}'}\n"
                ),
            }
        )
        await install(platform, git_remote, slack, pd, zd, [render, actions_pipeline(zd.url)])
        # Outages and lost answers on the first calls: the work happens, the answer does not arrive, or it must wait.
        slack.fail("POST", "/api/chat.postMessage", 500, after=True)
        pd.fail("POST", "/services", 503)
        zd.fail("POST", "/api/v2/tickets.json", 429, **{"Retry-After": "1"})
        await platform.apply(resource("App", "shop", {"team": "payments", "size": "small"}))
        obj = await eventually(
            lambda: get(platform, "app", "shop"),
            lambda o: condition(o, "Reconciled").get("status") == "True",
            what="reconciled with its actions",
        )
        # The status edit follows the run's verdict, as a step of its own.
        await eventually(
            slack.messages,
            lambda ms: any("Status: Reconciled" in m["text"] for m in ms if m["text"].startswith("App shop")),
            what="the Slack message edited to Status: Reconciled",
        )
        entries = {a["name"]: a for a in obj["status"]["actions"]}
        assert {n: e["state"] for n, e in entries.items()} == {
            "computed": "Succeeded",
            "announce": "Succeeded",
            "on-call": "Succeeded",
            "ticket": "Succeeded",
        }
        announced = [m for m in slack.messages() if m["text"].startswith("App shop")]
        assert len(announced) == 1 and "Status: Reconciled" in announced[0]["text"]
        assert [m["text"] for m in slack.messages() if "rendered" in m["text"]] == [
            "rendered shop in default\nStatus: Reconciled"
        ]
        assert entries["announce"]["externalId"] == announced[0]["ts"] and entries["announce"]["link"].startswith(
            "https://fake.slack.com/"
        )
        assert [s["name"] for s in pd.objects["services"].values()] == ["payments-shop"]
        assert len(pd.objects["schedules"]) == 1 and len(pd.objects["escalation_policies"]) == 1
        [ticket] = zd.tickets.values()
        assert ticket["subject"] == "Provision shop" and ticket["external_id"].startswith("ktx-")
        assert entries["ticket"]["externalId"] == str(ticket["id"])

        # An update goes to the same message, rota and ticket.
        await platform.apply(resource("App", "shop", {"team": "payments", "size": "large"}))
        await eventually(
            lambda: get(platform, "app", "shop"),
            lambda o: (
                len(zd.tickets[ticket["id"]]["comments"]) == 2 and condition(o, "Reconciled").get("status") == "True"
            ),
        )
        announced = [m for m in slack.messages() if m["text"].startswith("App shop")]
        assert len(announced) == 1 and "(large)" in announced[0]["text"]
        assert len(pd.objects["services"]) == 1 and len(zd.tickets) == 1
        assert zd.tickets[ticket["id"]]["comments"][-1] == "Size large requested by payments"

        # Deletion compensates: the message says so, the rota this platform made is removed, the ticket solved.
        await platform.wait_deleted(await platform.delete("app", "shop"), timeout=60)
        assert "Status: Deleted" in [m for m in slack.messages() if m["text"].startswith("App shop")][0]["text"]
        assert (
            pd.objects["services"] == {} and pd.objects["schedules"] == {} and pd.objects["escalation_policies"] == {}
        )
        assert zd.tickets[ticket["id"]]["status"] == "solved"
        for value in (SLACK_TOKEN, PD_TOKEN, PD_ROUTING, ZD_TOKEN):
            assert await histories_mention(platform.client, value) == []


async def test_a_refusal_fails_the_step_at_once_and_a_failure_pages_once(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    with (
        FakeSlack("another-token") as slack,
        FakePagerDuty(PD_TOKEN, PD_ROUTING) as pd,
        FakeZendesk("ops@example.com", ZD_TOKEN) as zd,
    ):
        platform = await platform_factory(settings=settings(slack, pd))
        page = {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "page"},
            "spec": {
                "actions": [
                    {
                        "name": "on-call",
                        "pagerduty": {"secretRef": {"name": "pagerduty"}, "service": "${metadata.name}"},
                    }
                ]
            },
        }
        gated = pipeline("deploy", GATE_LABEL="fixed", FAIL="3")
        await install(platform, git_remote, slack, pd, zd, [page, gated])
        await platform.apply(resource("App", "flaky"))
        failed = await eventually(
            lambda: get(platform, "app", "flaky"),
            lambda o: (
                condition(o, "Reconciled").get("status") == "False"
                and any(a.get("incident") for a in o["status"].get("actions", []))
            ),
        )
        [key] = pd.incidents
        assert pd.incidents[key] == {"status": "triggered", "triggers": 1, "summary": pd.incidents[key]["summary"]}
        assert "pipeline deploy failed" in pd.incidents[key]["summary"]
        assert {a["name"]: a.get("incident") for a in failed["status"]["actions"]} == {"on-call": "triggered"}
        await platform.label("app", "flaky", set={"fixed": "yes"})
        await platform.reconcile("app", "flaky")
        await eventually(
            lambda: get(platform, "app", "flaky"),
            lambda o: (
                condition(o, "Reconciled").get("status") == "True"
                and [a.get("incident") for a in o["status"]["actions"]] == ["resolved"]
            ),
        )
        assert pd.incidents[key]["status"] == "resolved" and pd.incidents[key]["triggers"] == 1

        # A Slack token the workspace refuses fails the pipeline with Slack's error, after one try (no retry storm).
        refused = {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "announce"},
            "spec": {
                "actions": [{"name": "hello", "slack": {"secretRef": {"name": "slack"}, "channel": "#x", "text": "hi"}}]
            },
        }
        await platform.apply(promise("loud", "Loud", configure=[refused]))
        await platform.wait_condition("promise", "loud", "default", "Available", timeout=60)
        await platform.apply(resource("Loud", "one"))
        obj = await eventually(
            lambda: get(platform, "loud", "one"), lambda o: condition(o, "Reconciled").get("status") == "False"
        )
        assert "action hello (slack) failed: slack: invalid_auth" in condition(obj, "ConfigureWorkflowCompleted").get(
            "message", ""
        ) or "invalid_auth" in str(obj["status"])
        assert len(slack.calls) == 1  # refused once, never retried
