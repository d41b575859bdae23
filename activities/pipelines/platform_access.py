"""How a pipeline container reaches the platform API, as a Kratix pipeline Pod reaches its API server: a token for
the pipeline's rules, the CA to trust and the namespace, in Kubernetes' ServiceAccount files, and KUBERNETES_SERVICE_*
naming the endpoint. In-cluster config of the `kubernetes` client, kubectl and kratix-sdk then work unchanged.

The token is minted here, inside the pipeline activity, when the run starts: it never travels in a workflow's input or
result (Temporal history), and is never logged. It lives in the run's workspace (under the worker's 0700 directory)
until the workspace is removed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from activities.pipelines.models import RunPipelineInput
from domain.kube.pipeline_token import ObjectRef, PipelineClaims, claims_for, mint, parse_permissions

_READ_VERBS = ("get", "list", "watch")

SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# The token outlives the run's deadline (activeDeadlineSeconds on Kubernetes, the podman runner's own) by 5 minutes:
# a Job's clock starts when Kubernetes starts it, which can be a little after the token is minted (an image pull, a
# busy scheduler; the Kubernetes runner gives up on a Pod stuck that long at 2 minutes), and a container killed at the
# deadline needs no token after it.
TOKEN_TTL_MARGIN_S = 300.0


@dataclass(frozen=True)
class PlatformAccess:
    """What the worker gives every pipeline to reach the platform API: the key tokens are signed with (shared with the
    API), the CA bundle that signed the API's certificate, and where the container finds the API."""

    token_key: bytes
    ca_pem: bytes
    service_host: str
    service_port: int

    def claims(self, input: RunPipelineInput) -> PipelineClaims:
        ctx = input.context
        rbac = input.pipeline.spec.rbac
        # Checked at apply; a Promise admitted before they were is held to the rules that still parse (fewer rights,
        # never more).
        permissions = parse_permissions(rbac.permissions, "rbac.permissions")[0] if rbac else []
        claims = claims_for(
            obj=ObjectRef(
                group=ctx.object_group,
                version=ctx.object_version,
                kind=ctx.object_kind,
                plural=ctx.crd_plural,
                name=ctx.object_name,
                namespace=ctx.object_namespace,
            ),
            promise=ctx.promise_name,
            workflow_type=ctx.workflow_type,
            action=ctx.action,
            pipeline=input.pipeline.metadata.name,
            permissions=permissions,
            expires_at=0,
            configured_namespace=ctx.pipeline_namespace,
            service_account=rbac.service_account if rbac else None,
        )
        if ctx.dry_run:
            # A dry run reaches nothing real: its token reads what the real run's may, and writes nothing (a
            # wildcard verb is dropped with the writes), so a pipeline's kubectl cannot touch the live request.
            reads = [r.model_copy(update={"verbs": [v for v in r.verbs if v in _READ_VERBS]}) for r in claims.rules]
            claims = claims.model_copy(update={"rules": [r for r in reads if r.verbs]})
        return claims

    def files(self, input: RunPipelineInput) -> dict[str, bytes]:
        """The ServiceAccount directory's files, as kubelet projects them (no newline after the token: the
        `kubernetes` client sends the file as it is)."""
        claims = self.claims(input)
        token = mint(claims, self.token_key, input.timeout_s + TOKEN_TTL_MARGIN_S, now=time.time())
        return {"token": token.encode(), "ca.crt": self.ca_pem, "namespace": claims.namespace.encode()}

    def write_service_account(self, input: RunPipelineInput, directory: Path) -> Path:
        """The files in `directory` (created), readable by whatever user the container runs as (kubelet's 0644);
        the directory's parents keep the host's other users out."""
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
        for name, content in self.files(input).items():
            path = directory / name
            path.write_bytes(content)
            path.chmod(0o644)
        return directory

    def env(self) -> dict[str, str]:
        """What kubelet sets for the `kubernetes` Service in every container (the docker-link variables too)."""
        host, port = self.service_host, str(self.service_port)
        address = f"tcp://{host}:{port}"
        return {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": address,
            f"KUBERNETES_PORT_{port}_TCP": address,
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": port,
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
        }
