"""domain/crossplane.py against kratix-cli's init_crossplane_promise.go: the API from the XRD's served version, the
spec's default from its required fields', the claim pipeline, the example request, and refusals naming the field."""

from __future__ import annotations

import pytest
import yaml

from domain import crossplane
from domain.errors import InvalidDocument
from tests.e2e.test_cli import COMPOSITION, XRD


def files(xrd: object = None, split: bool = False, dependencies: list | None = None) -> tuple[dict, dict]:
    document = yaml.safe_load(XRD) if xrd is None else xrd
    return crossplane.promise_files(
        "buckets", document, "platform.example.org", "Bucket", "", split, dependencies or [], "--xrd xrd.yaml"
    )


def test_the_api_is_the_served_versions_schema_with_the_spec_defaulted_from_its_required_fields() -> None:
    written, crd = files(dependencies=[yaml.safe_load(COMPOSITION)])
    promise = yaml.safe_load(written["promise.yaml"])
    assert promise["metadata"] == {"labels": {"kratix.io/promise-version": "v0.0.1"}, "name": "buckets"}
    version = crd["spec"]["versions"][0]
    assert (crd["metadata"]["name"], version["name"]) == ("buckets.platform.example.org", "v1alpha1")
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    assert schema["spec"]["default"] == {"region": "eu-west-2"} and "status" in schema
    assert promise["spec"]["destinationSelectors"] == [{"matchLabels": {"crossplane": "enabled"}}]
    assert [d["kind"] for d in promise["spec"]["dependencies"]] == ["Composition"]
    [pipeline] = promise["spec"]["workflows"]["resource"]["configure"]
    [container] = pipeline["spec"]["containers"]
    assert (pipeline["metadata"]["name"], container["name"], container["image"]) == (
        "instance-configure",
        "from-api-to-crossplane-claim",
        "ghcr.io/syntasso/kratix-cli/from-api-to-crossplane-claim:v0.2.2",
    )
    # The claim kind, not the composite one.
    assert container["env"] == [
        {"name": "XRD_GROUP", "value": "storage.example.org"},
        {"name": "XRD_VERSION", "value": "v1alpha1"},
        {"name": "XRD_KIND", "value": "Bucket"},
    ]
    assert yaml.safe_load(written["example-resource.yaml"]) == {
        "apiVersion": "platform.example.org/v1alpha1",
        "kind": "Bucket",
        "metadata": {"name": "example-request", "namespace": "default"},
        "spec": {"region": "# type string"},
    }
    assert "ktx init crossplane-promise buckets --xrd xrd.yaml --group platform.example.org" in written["README.md"]
    assert crossplane.warnings(crd) == []


def test_split_and_a_required_field_without_a_default() -> None:
    xrd = yaml.safe_load(XRD)
    spec = xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"]["region"]["default"]
    written, crd = files(xrd, split=True)
    assert sorted(written) == [
        "README.md",
        "api.yaml",
        "dependencies.yaml",
        "example-resource.yaml",
        "workflows/resource/configure/workflow.yaml",
    ]
    assert "default" not in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    [warning] = crossplane.warnings(crd)
    assert warning.startswith('warning: required field "region" has no default value')


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda x: x.update(kind="ConfigMap"), "--xrd"),
        (lambda x: x["spec"].update(group="Not A Group"), "--xrd: spec.group"),
        (lambda x: x["spec"]["claimNames"].update(kind="--privileged"), "--xrd: spec.names.kind"),
        (lambda x: x["spec"]["versions"][0].update(served=False), "--xrd: spec.versions"),
        (lambda x: x["spec"]["versions"][0].pop("schema"), "--xrd: spec.versions[].schema"),
        (lambda x: x["spec"]["versions"][0].update(name="-v1"), "--xrd: spec.versions[].name"),
    ],
)
def test_an_xrd_that_is_not_one_is_refused_naming_the_field(change, field) -> None:
    xrd = yaml.safe_load(XRD)
    change(xrd)
    with pytest.raises(InvalidDocument) as refused:
        files(xrd)
    assert field in [e.field for e in refused.value.errors]
