"""The names the platform accepts, in a module that imports nothing heavy: the `ktx` CLI checks names and builds
its help from these before a command runs, and the full domain (pydantic models, schemas) costs a third of a second
to import, more than a `ktx get` itself."""

from __future__ import annotations

import re
from typing import Literal, get_args

# DNS-1123 subdomain (Kubernetes object names, at most SUBDOMAIN_MAX) and label (namespaces, at most LABEL_MAX).
NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MAX = 253
# Kinds (Promise APIs and the platform's own): CamelCase from an uppercase letter, as every Kratix kind is.
KIND_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]*$")
# Kratix caps resource names at 63 characters (the CRD it generates forces maxLength on metadata.name), and ktx
# Promise, Destination and store names become label values (kratix.io/promise-name, ktx.io/destination): also 63.
LABEL_MAX = 63

KRATIX_GROUP = "platform.kratix.io"
KRATIX_API_VERSION = f"{KRATIX_GROUP}/v1alpha1"

# The GitOps agents `ktx destination manifests` writes a Destination's pull objects for (domain/gitops.py).
GitOpsAgent = Literal["flux", "argocd"]
GITOPS_AGENTS: tuple[str, ...] = get_args(GitOpsAgent)
