"""The Kratix labels and annotations the platform reads or writes on Promises and resources."""

from __future__ import annotations

MANUAL_RECONCILIATION = "kratix.io/manual-reconciliation"
RECONCILE_RESOURCES = "kratix.io/reconcile-resources"
PAUSED = "kratix.io/paused"
WORKFLOW_SUSPENDED = "kratix.io/workflow-suspended"
PROMISE_VERSION = "kratix.io/promise-version"
PROMISE_NAME = "kratix.io/promise-name"
RECONCILIATION_INTERVAL = "kratix.io/reconciliation-interval"

COMPONENT_OF_PROMISE = "kratix.io/component-of-promise-name"
COMPONENT_OF_RESOURCE = "kratix.io/component-of-resource-name"
COMPONENT_OF_NAMESPACE = "kratix.io/component-of-resource-namespace"

# Set by the platform while a pipeline is suspended; a user removes it to resume, so a re-apply must not drop it.
PLATFORM_OWNED = (WORKFLOW_SUSPENDED,)


def is_true(labels: dict[str, str], key: str) -> bool:
    return labels.get(key) == "true"
