"""Kratix's Work and WorkPlacement objects (api/v1alpha1/work_types.go, workplacement_types.go), derived from what
an object's workflow keeps of its pipelines' outputs: where each workload group landed (its placements) and which
groups wait for a Destination (its pending groups).

ktx holds no Work objects: one pipeline's output is one Work, named as Kratix names it (`<identifier>-<5 chars>`,
the 5 derived rather than random so the name is stable), in the namespace Kratix puts it (the request's namespace,
`kratix-platform-system` for a Promise's), with the labels Kratix's work creator and scheduler set, so label
selectors such as `kratix.io/misplaced=true` select what they select in Kratix. The workloads themselves (the
files) live in the state stores, not in the workflow, so `spec.workloadGroups[].workloads` is left out.
"""

from __future__ import annotations

import uuid
from typing import Any

from domain.layout import PLATFORM_NAMESPACE, group_id, work_name, workplacement_name

KRATIX = "kratix.io/"
PROMISE_NAME = KRATIX + "promise-name"
RESOURCE_NAME = KRATIX + "resource-name"
RESOURCE_NAMESPACE = KRATIX + "resource-namespace"
PIPELINE_NAME = KRATIX + "pipeline-name"
WORK_TYPE = KRATIX + "work-type"
WORK = KRATIX + "work"
WORKLOAD_GROUP_ID = KRATIX + "workload-group-id"
TARGET_DESTINATION = KRATIX + "targetDestinationName"
MISPLACED = KRATIX + "misplaced"
REPO_CLEANUP_FINALIZER = "finalizers.workplacement.kratix.io/repo-cleanup"
STATIC_PIPELINE = ""  # a Promise's static dependencies: Kratix's `<promise>-static-deps` Work, no pipeline


def _condition(type_: str, ok: bool, reason: str, message: str, when: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
    }


def derived_uid(owner_uid: str, name: str) -> str:
    """Stable for the owner's life: the owner's uid and the derived object's name decide it."""
    try:
        base = uuid.UUID(owner_uid)
    except ValueError:
        base = uuid.NAMESPACE_OID
    return str(uuid.uuid5(base, name))


class Owner:
    """What the Work of one object needs of it: a Promise (`resource` empty) or a resource request."""

    def __init__(self, obj: dict[str, Any], promise: str):
        meta = obj.get("metadata") or {}
        self.promise = promise
        self.is_resource = obj.get("kind") != "Promise"
        self.resource = meta.get("name", "") if self.is_resource else ""
        self.namespace = (meta.get("namespace") or "default") if self.is_resource else PLATFORM_NAMESPACE
        self.uid = str(meta.get("uid") or "")
        self.created = str(meta.get("creationTimestamp") or "")
        self.generation = int(meta.get("generation") or 1)
        ktx = obj.get("_ktx") or {}
        self.resource_version = ktx.get("resourceVersion")
        self.placements = [p for p in ktx.get("placements") or [] if not p.get("removing")]
        self.pending = list(ktx.get("pending") or [])

    def identifier(self, pipeline: str) -> str:
        if not self.is_resource:
            return f"{self.promise}-static-deps" if pipeline == STATIC_PIPELINE else f"{self.promise}-{pipeline}"
        return f"{self.promise}-{self.resource}-{pipeline}"

    def work_type(self, pipeline: str) -> str:
        if self.is_resource:
            return "resource"
        return "static-dependency" if pipeline == STATIC_PIPELINE else "promise"

    def pipelines(self) -> list[str]:
        """Each pipeline with output, in the order its groups first appear."""
        seen = [p["pipeline"] for p in self.placements] + [g["pipeline"] for g in self.pending]
        return list(dict.fromkeys(seen))

    def _ktx(self) -> dict[str, Any]:
        return {} if self.resource_version is None else {"resourceVersion": self.resource_version}

    def work_labels(self, pipeline: str) -> dict[str, str]:
        # resourceutil.GetWorkLabels, as the work creator and the static-dependency Work set them.
        labels = {PROMISE_NAME: self.promise, WORK_TYPE: self.work_type(pipeline)}
        if pipeline:
            labels[PIPELINE_NAME] = pipeline
        if self.is_resource:
            labels[RESOURCE_NAME] = self.resource
            labels[RESOURCE_NAMESPACE] = self.namespace
        return labels

    def _metadata(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """What a Work and its WorkPlacements share: the owner's namespace, age and generation, a uid of their own."""
        return {
            "name": name,
            "namespace": self.namespace,
            "uid": derived_uid(self.uid, name),
            "creationTimestamp": self.created,
            "generation": self.generation,
            "labels": labels,
        }

    def work(self, pipeline: str) -> dict[str, Any]:
        name = work_name(self.identifier(pipeline))
        placed = [p for p in self.placements if p["pipeline"] == pipeline]
        pending = [g for g in self.pending if g["pipeline"] == pipeline]
        directories = list(dict.fromkeys([p["directory"] for p in placed] + [g["directory"] for g in pending]))
        selectors = {g["directory"]: g.get("selector") or {} for g in pending}
        groups = []
        for directory in directories:
            group: dict[str, Any] = {"id": group_id(directory), "directory": directory}
            if selectors.get(directory):
                group["destinationSelectors"] = [{"matchLabels": selectors[directory]}]
            groups.append(group)
        spec: dict[str, Any] = {"promiseName": self.promise, "workloadGroups": groups}
        if self.resource:
            spec["resourceName"] = self.resource
        unscheduled = [group_id(g["directory"]) for g in pending]
        misplaced = list(dict.fromkeys(group_id(p["directory"]) for p in placed if p.get("misplaced")))
        failing = [self._placement_name(name, p) for p in placed if p.get("error")]
        return {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Work",
            "metadata": self._metadata(name, self.work_labels(pipeline)),
            "spec": spec,
            "status": {
                "conditions": self._work_conditions(unscheduled, misplaced, failing),
                "workPlacements": len(groups),
                "workPlacementsCreated": len(groups) - len(unscheduled),
            },
            "_ktx": self._ktx(),
        }

    def _work_conditions(self, unscheduled: list[str], misplaced: list[str], failing: list[str]) -> list[dict]:
        """The scheduler's Ready and ScheduleSucceeded (scheduler.go updateWorkStatus), then the Work controller's
        override when a WorkPlacement failed to write (work_controller.go)."""
        when = self.created
        if failing:
            message = f"Workplacements failed to write: [{','.join(failing)}]"
            schedule = _condition("ScheduleSucceeded", False, "WorkplacementsFailing", message, when)
            ready = _condition("Ready", False, "WorkplacementsFailing", "Failing", when)
        elif unscheduled:
            message = f"No matching destination found for workloadGroups: [{','.join(unscheduled)}]"
            schedule = _condition("ScheduleSucceeded", False, "UnscheduledWorkloads", message, when)
            ready = _condition("Ready", False, "UnscheduledWorkloads", "Pending", when)
        elif misplaced:
            message = (
                f"Target destination no longer matches destinationSelectors for workloadGroups: [{','.join(misplaced)}]"
            )
            schedule = _condition("ScheduleSucceeded", False, "DestinationSelectorMismatch", message, when)
            ready = _condition("Ready", False, "Misplaced", "Misplaced", when)
        else:
            message = "All workplacements scheduled successfully"
            schedule = _condition("ScheduleSucceeded", True, "AllWorkplacementsScheduled", message, when)
            ready = _condition("Ready", True, "AllWorkplacementsScheduled", "Ready", when)
        return [schedule, ready]

    @staticmethod
    def _placement_name(work: str, placement: dict[str, Any]) -> str:
        return workplacement_name(work, placement["destination"], placement["directory"])

    def workplacement(self, placement: dict[str, Any]) -> dict[str, Any]:
        pipeline = placement["pipeline"]
        work = work_name(self.identifier(pipeline))
        name = self._placement_name(work, placement)
        gid = group_id(placement["directory"])
        # scheduler.go applyWorkplacementsForTargetDestinations, then SetPipelineName (empty for static deps).
        labels = {WORK: work, WORKLOAD_GROUP_ID: gid, TARGET_DESTINATION: placement["destination"]}
        labels[PIPELINE_NAME] = pipeline
        if placement.get("misplaced"):
            labels[MISPLACED] = "true"
        spec: dict[str, Any] = {
            "targetDestinationName": placement["destination"],
            "promiseName": self.promise,
            "id": gid,
            "generation": self.generation,
        }
        if self.resource:
            spec["resourceName"] = self.resource
        status: dict[str, Any] = {"conditions": self._placement_conditions(placement)}
        if placement.get("version_id"):
            status["versionID"] = placement["version_id"]
        return {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "WorkPlacement",
            "metadata": {
                **self._metadata(name, labels),
                "finalizers": [REPO_CLEANUP_FINALIZER],
                "ownerReferences": [
                    {
                        "apiVersion": "platform.kratix.io/v1alpha1",
                        "kind": "Work",
                        "name": work,
                        "uid": derived_uid(self.uid, work),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": status,
            "_ktx": self._ktx(),
        }

    def _placement_conditions(self, placement: dict[str, Any]) -> list[dict[str, Any]]:
        """workplacement_types.go and scheduler.go: ScheduleSucceeded, WriteSucceeded, and Ready from both."""
        when = self.created
        misplaced = bool(placement.get("misplaced"))
        error = placement.get("error")
        if misplaced:
            schedule = _condition(
                "ScheduleSucceeded",
                False,
                "DestinationSelectorMismatch",
                "Target destination no longer matches destinationSelectors",
                when,
            )
        else:
            schedule = _condition(
                "ScheduleSucceeded", True, "ScheduledToDestination", "Scheduled to correct Destination", when
            )
        if error:
            write = _condition("WriteSucceeded", False, "WorkloadsFailedWrite", str(error), when)
            ready = _condition("Ready", False, "WorkloadsFailedWrite", "Failing", when)
        else:
            write = _condition(
                "WriteSucceeded", True, "WorkloadsWrittenToStateStore", "Workloads written to State Store", when
            )
            ready = (
                _condition("Ready", False, "Misplaced", "Misplaced", when)
                if misplaced
                else _condition("Ready", True, "WorkloadsWrittenToTargetDestination", "Ready", when)
            )
        return [schedule, write, ready]

    def works(self) -> list[dict[str, Any]]:
        return [self.work(pipeline) for pipeline in self.pipelines()]

    def workplacements(self) -> list[dict[str, Any]]:
        return [self.workplacement(p) for p in self.placements]
