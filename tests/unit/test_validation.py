from pathlib import Path

import pytest
import yaml

from domain.documents import Promise
from domain.errors import InvalidDocument
from domain.promise_api import check_promise, read_promise_api
from domain.validation import validate_resource_request

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "promises" / "app-config"


@pytest.fixture
def api():
    promise = Promise.model_validate(yaml.safe_load((EXAMPLE / "promise.yaml").read_text()))
    return check_promise(promise)


def request(spec, name="checkout"):
    return {"apiVersion": "example.ktx.io/v1alpha1", "kind": "AppConfig", "metadata": {"name": name}, "spec": spec}


def test_defaults_are_applied_and_namespace_defaults(api):
    parsed = validate_resource_request(api, request({"team": "payments"}))
    assert parsed.spec == {"team": "payments", "size": "small", "replicas": 1}
    assert parsed.metadata.namespace == "default"


def test_every_field_error_is_reported_with_its_path(api):
    with pytest.raises(InvalidDocument) as refused:
        validate_resource_request(api, request({"team": "Bad Team", "replicas": "two", "extra": 1}))
    fields = {e.field: e.reason for e in refused.value.errors}
    assert "should match" in fields["spec.team"]
    assert "must be of type integer" in fields["spec.replicas"]
    assert fields["spec.extra"] == "field not declared in schema"


def test_name_rules(api):
    with pytest.raises(InvalidDocument, match="metadata.name"):
        validate_resource_request(api, request({"team": "a"}, name="Not_Valid"))
    with pytest.raises(InvalidDocument, match="no more than 63"):
        validate_resource_request(api, request({"team": "a"}, name="a" * 64))


def test_wrong_api_version_is_refused(api):
    doc = request({"team": "a"})
    doc["apiVersion"] = "example.ktx.io/v2"
    with pytest.raises(InvalidDocument, match="apiVersion"):
        validate_resource_request(api, doc)


def test_storage_version_is_served_and_cluster_scope_refused():
    crd = {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.x.io"},
        "spec": {
            "group": "x.io",
            "names": {"kind": "Thing", "plural": "things"},
            "versions": [{"name": "v1"}, {"name": "v2", "storage": True}],
        },
    }
    assert read_promise_api("p", crd).version == "v2"
    crd["spec"]["scope"] = "Cluster"
    with pytest.raises(InvalidDocument, match="namespace scoped"):
        read_promise_api("p", crd)


def test_promise_admission_rules():
    doc = yaml.safe_load((EXAMPLE / "promise.yaml").read_text())
    doc["spec"]["workflows"]["resource"]["configure"].append(doc["spec"]["workflows"]["resource"]["configure"][0])
    doc["spec"]["workflows"]["config"] = {"reconciliationInterval": "30s"}
    with pytest.raises(InvalidDocument) as refused:
        check_promise(Promise.model_validate(doc))
    reasons = str(refused.value)
    assert "duplicate pipeline name 'render'" in reasons
    assert "at least 1m" in reasons


def test_pipelines_are_decoded_strictly():
    doc = yaml.safe_load((EXAMPLE / "promise.yaml").read_text())
    doc["spec"]["workflows"]["resource"]["configure"][0]["spec"]["unknownField"] = True
    with pytest.raises(ValueError, match="unknownField"):
        Promise.model_validate(doc)
