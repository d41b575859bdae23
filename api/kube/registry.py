"""Which resources the Kubernetes API serves: the platform's own kinds, as Kratix's CRDs declare them, and every
installed Promise's API, in every version its CRD serves, read from the platform's catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.kube.errors import KubeError
from domain.names import KRATIX_GROUP
from domain.kube.crd import DEFAULT_COLUMNS
from domain.kube import rollout_plans
from domain.kube.printer_columns import PRINTER_COLUMNS
from domain import rollout_plan as rp
from domain.promise_api import PromiseApi
from service.platform import Platform

try:  # the derived read-only kinds (Work, WorkPlacement, Namespace, Event, CustomResourceDefinition)
    from service.kube_views import VIEWS
except ImportError:  # until the kube-views work is merged: those kinds are not served
    VIEWS: dict[str, Any] = {}  # type: ignore[no-redef]

READ_ONLY = ("get", "list", "watch")
READ_WRITE = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class KubeResource:
    group: str  # "" for the core group (v1)
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]  # as discovery lists them
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    ktx_kind: str = ""  # what Platform.get/list/label/delete take
    subresources: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = ()  # CRD additionalPrinterColumns shape
    schema: dict[str, Any] | None = None  # openAPIV3Schema of this version
    storage_version: str = ""  # the version the object is stored as (a Promise API's chosen version)
    promise: str = ""  # the Promise serving this API; "" for the platform's own kinds

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def allows(self, verb: str) -> bool:
        return verb in self.verbs


# Kratix's CRDs (config/crd/bases/platform.kratix.io_*.yaml): names, scope and categories; their printer columns from
# domain/kube/printer_columns.py, read from the same CRDs.
_KRATIX = {"group": KRATIX_GROUP, "version": "v1alpha1", "categories": ("kratix",)}
BUILTIN: tuple[KubeResource, ...] = (
    KubeResource(
        **_KRATIX,
        kind="Promise",
        plural="promises",
        singular="promise",
        namespaced=False,
        verbs=READ_WRITE,
        ktx_kind="Promise",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["Promise"],
    ),
    KubeResource(
        **_KRATIX,
        kind="PromiseRelease",
        plural="promisereleases",
        singular="promiserelease",
        namespaced=False,
        verbs=READ_WRITE,
        ktx_kind="PromiseRelease",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["PromiseRelease"],
    ),
    KubeResource(
        **_KRATIX,
        kind="Destination",
        plural="destinations",
        singular="destination",
        namespaced=False,
        verbs=READ_WRITE,
        short_names=("dest", "dests"),
        ktx_kind="Destination",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["Destination"],
    ),
    KubeResource(
        **_KRATIX,
        kind="GitStateStore",
        plural="gitstatestores",
        singular="gitstatestore",
        namespaced=False,
        verbs=READ_WRITE,
        ktx_kind="GitStateStore",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["GitStateStore"],
    ),
    KubeResource(
        **_KRATIX,
        kind="BucketStateStore",
        plural="bucketstatestores",
        singular="bucketstatestore",
        namespaced=False,
        verbs=READ_WRITE,
        ktx_kind="BucketStateStore",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["BucketStateStore"],
    ),
    # Kratix's HealthRecord CRD declares no category.
    KubeResource(
        group=KRATIX_GROUP,
        version="v1alpha1",
        kind="HealthRecord",
        plural="healthrecords",
        singular="healthrecord",
        namespaced=True,
        verbs=READ_WRITE,
        ktx_kind="HealthRecord",
        printer_columns=PRINTER_COLUMNS["HealthRecord"],
    ),
    # Kratix's DryRun CRD (a preview there): no printer columns of its own, so NAME and AGE.
    KubeResource(
        **_KRATIX,
        kind="DryRun",
        plural="dryruns",
        singular="dryrun",
        namespaced=True,
        verbs=READ_WRITE,
        ktx_kind="DryRun",
    ),
    # Made by the Promise's workflow for each version applied; deleted by name (never the latest).
    KubeResource(
        **_KRATIX,
        kind="PromiseRevision",
        plural="promiserevisions",
        singular="promiserevision",
        namespaced=False,
        verbs=("delete", "get", "list", "watch"),
        ktx_kind="PromiseRevision",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["PromiseRevision"],
    ),
    # One per request, held by the request's workflow (or its Promise's, when made before the request).
    KubeResource(
        **_KRATIX,
        kind="ResourceBinding",
        plural="resourcebindings",
        singular="resourcebinding",
        namespaced=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        ktx_kind="ResourceBinding",
        subresources=("status",),
        printer_columns=PRINTER_COLUMNS["ResourceBinding"],
    ),
    # ktx's own kind (docs/rollouts.md), so in none of Kratix's categories; a plan is held by its workflow.
    KubeResource(
        group=rp.GROUP,
        version=rp.VERSION,
        kind=rp.KIND,
        plural="rolloutplans",
        singular="rolloutplan",
        namespaced=False,
        verbs=READ_WRITE,
        ktx_kind=rp.KIND,
        printer_columns=rollout_plans.PRINTER_COLUMNS,
        schema=rollout_plans.SCHEMA,
    ),
    KubeResource(
        **_KRATIX,
        kind="Work",
        plural="works",
        singular="work",
        namespaced=True,
        verbs=READ_ONLY,
        ktx_kind="Work",
        printer_columns=PRINTER_COLUMNS["Work"],
    ),
    KubeResource(
        **_KRATIX,
        kind="WorkPlacement",
        plural="workplacements",
        singular="workplacement",
        namespaced=True,
        verbs=READ_ONLY,
        short_names=("wp", "wps"),
        ktx_kind="WorkPlacement",
        printer_columns=PRINTER_COLUMNS["WorkPlacement"],
    ),
    KubeResource(
        group="",
        version="v1",
        kind="Secret",
        plural="secrets",
        singular="secret",
        namespaced=True,
        # Secrets live in the secret provider, not in a workflow: the change feed has nothing to watch.
        verbs=("create", "delete", "get", "list", "patch", "update"),
        ktx_kind="Secret",
    ),
    KubeResource(
        group="",
        version="v1",
        kind="Namespace",
        plural="namespaces",
        singular="namespace",
        namespaced=False,
        verbs=READ_ONLY,
        short_names=("ns",),
        ktx_kind="Namespace",
        printer_columns=PRINTER_COLUMNS["Namespace"],
    ),
    KubeResource(
        group="",
        version="v1",
        kind="Event",
        plural="events",
        singular="event",
        namespaced=True,
        verbs=READ_ONLY,
        short_names=("ev",),
        ktx_kind="Event",
        printer_columns=PRINTER_COLUMNS["Event"],
    ),
    KubeResource(
        group="apiextensions.k8s.io",
        version="v1",
        kind="CustomResourceDefinition",
        plural="customresourcedefinitions",
        singular="customresourcedefinition",
        namespaced=False,
        verbs=READ_ONLY,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        ktx_kind="CustomResourceDefinition",
        printer_columns=PRINTER_COLUMNS["CustomResourceDefinition"],
    ),
    KubeResource(
        group="authorization.k8s.io",
        version="v1",
        kind="SelfSubjectAccessReview",
        plural="selfsubjectaccessreviews",
        singular="selfsubjectaccessreview",
        namespaced=False,
        verbs=("create",),
        ktx_kind="SelfSubjectAccessReview",
    ),
    KubeResource(
        group="authorization.k8s.io",
        version="v1",
        kind="SelfSubjectRulesReview",
        plural="selfsubjectrulesreviews",
        singular="selfsubjectrulesreview",
        namespaced=False,
        verbs=("create",),
        ktx_kind="SelfSubjectRulesReview",
    ),
    KubeResource(
        group="authentication.k8s.io",
        version="v1",
        kind="SelfSubjectReview",
        plural="selfsubjectreviews",
        singular="selfsubjectreview",
        namespaced=False,
        verbs=("create",),
        ktx_kind="SelfSubjectReview",
    ),
)


def promise_resources(api: PromiseApi) -> list[KubeResource]:
    """One resource per served version of a Promise's CRD; Kratix adds the status subresource to every version."""
    columns = tuple(api.printer_columns) or tuple(DEFAULT_COLUMNS)
    return [
        KubeResource(
            group=api.group,
            version=version,
            kind=api.kind,
            plural=api.plural,
            singular=api.singular,
            namespaced=True,
            verbs=READ_WRITE,
            short_names=tuple(api.short_names),
            categories=tuple(api.categories),
            # Unique across Promises (the catalog refuses a second Promise with the same kind and group).
            ktx_kind=f"{api.plural}.{api.group}",
            subresources=("status",),
            printer_columns=columns,
            schema=api.schema_ or None,
            storage_version=api.version,
            promise=api.promise,
        )
        for version in (api.served_versions or [api.version])
    ]


# Kinds no workflow holds: served only through their view (service/kube_views.py).
VIEW_KINDS = {"Work", "WorkPlacement", "Namespace", "Event", "CustomResourceDefinition"}


def _served(resource: KubeResource) -> bool:
    return resource.ktx_kind not in VIEW_KINDS or resource.ktx_kind in VIEWS


async def served_resources(platform: Platform) -> list[KubeResource]:
    catalog = await platform.catalog()
    found = [r for r in BUILTIN if _served(r)]
    for name in sorted(catalog.apis):
        found += promise_resources(catalog.apis[name])
    return found


async def lookup(platform: Platform, group: str, version: str, plural: str) -> KubeResource:
    """The resource a URL names; a 404 Status as the apiserver answers for a resource it does not serve."""
    for resource in BUILTIN:
        if (resource.group, resource.version, resource.plural) == (group, version, plural) and _served(resource):
            return resource
    for api in (await platform.catalog()).apis.values():
        if (api.group, api.plural) == (group, plural):
            for resource in promise_resources(api):
                if resource.version == version:
                    return resource
    raise KubeError("NotFound", "the server could not find the requested resource", {})
