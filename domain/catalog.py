"""The platform's catalog: served Promise APIs, Destinations and state stores, with Kratix's admission rules.

It plays the part of the Kubernetes API server's index: small, consulted on every request, changed rarely.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from domain.documents import BucketStateStore, Destination, GitStateStore
from domain.errors import FieldError, InvalidDocument
from domain.layout import join
from domain.promise_api import PromiseApi
from domain.scheduling import DestinationView


class Catalog(BaseModel):
    apis: dict[str, PromiseApi] = Field(default_factory=dict)
    destinations: dict[str, Destination] = Field(default_factory=dict)
    git_state_stores: dict[str, GitStateStore] = Field(default_factory=dict)
    bucket_state_stores: dict[str, BucketStateStore] = Field(default_factory=dict)
    # Deleted Destinations and their `spec.cleanup`, so every object holding output there decides the same way
    # (remove the files, or leave them as Kratix does by default) whenever it notices, in whatever order.
    removed_destinations: dict[str, Literal["none", "all"]] = Field(default_factory=dict)

    def register_api(self, api: PromiseApi) -> None:
        for other in self.apis.values():
            if other.promise != api.promise and (other.group, other.kind) == (api.group, api.kind):
                raise InvalidDocument(
                    [FieldError("spec.api", f"{api.kind}.{api.group} is already served by Promise {other.promise!r}")]
                )
        current = self.apis.get(api.promise)
        if current is not None and (current.group, current.kind, current.plural) != (api.group, api.kind, api.plural):
            # Kratix: the API identity (name, kind, group, names) of an installed Promise is immutable.
            raise InvalidDocument(
                [FieldError("spec.api", "the API's group, kind and names are immutable once installed")]
            )
        self.apis[api.promise] = api

    def find_api(self, api_version: str, kind: str) -> PromiseApi | None:
        group = api_version.split("/", 1)[0]
        return next((a for a in self.apis.values() if a.group == group and a.kind == kind), None)

    def resolve_kind(self, name: str) -> PromiseApi | None:
        wanted = name.lower()
        return next((a for a in self.apis.values() if wanted in a.names()), None)

    def apply_destination(self, destination: Destination) -> None:
        spec = destination.spec
        current = self.destinations.get(destination.metadata.name)
        if current is not None and current.spec.filepath.mode != spec.filepath.mode:
            raise InvalidDocument([FieldError("spec.filepath.mode", "is immutable")])
        for other in self.destinations.values():
            if other.metadata.name == destination.metadata.name:
                continue
            same_store = other.spec.state_store_ref == spec.state_store_ref
            if same_store and join(other.spec.path) == join(spec.path):
                raise InvalidDocument(
                    [
                        FieldError(
                            "spec.path",
                            f"path {spec.path!r} is already used by Destination {other.metadata.name!r} "
                            "on the same state store",
                        )
                    ]
                )
        self.destinations[destination.metadata.name] = destination
        self.removed_destinations.pop(destination.metadata.name, None)

    def remove_destination(self, name: str) -> bool:
        removed = self.destinations.pop(name, None)
        if removed is not None:
            self.removed_destinations[name] = removed.spec.cleanup
        return removed is not None

    def holds_files_for(self, destination: str) -> bool:
        """Whether output placed on this Destination is still to be kept up to date (or removed when it goes)."""
        return destination in self.destinations or self.removed_destinations.get(destination) == "all"

    def apply_state_store(self, store: GitStateStore | BucketStateStore) -> None:
        if isinstance(store, GitStateStore):
            self.git_state_stores[store.metadata.name] = store
        else:
            self.bucket_state_stores[store.metadata.name] = store

    def state_store(self, kind: str, name: str) -> GitStateStore | BucketStateStore | None:
        stores = self.git_state_stores if kind == "GitStateStore" else self.bucket_state_stores
        return stores.get(name)

    def destination_views(self) -> list[DestinationView]:
        return [
            DestinationView(
                name=d.metadata.name, labels=d.metadata.labels, strict_match_labels=d.spec.strict_match_labels
            )
            for d in self.destinations.values()
        ]
