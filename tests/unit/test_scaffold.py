"""The Promise author's generators (domain/scaffold.py): what `ktx init promise`, `add container`, `update ...` and
`build promise` produce, matched against what `kratix` (syntasso/kratix-cli) writes, and every name refused that is
not a Kubernetes one before it becomes a path or an argument."""

from __future__ import annotations

import pytest
import yaml

from domain import helm_chart, scaffold as sc
from domain.crd_validation import admit_promise
from domain.documents import Promise
from domain.errors import InvalidDocument

# kratix-cli's templates/promise/promise.yaml.tpl rendered for `kratix init promise postgresql --group syntasso.io
# --kind Database`, byte for byte (the spec schema is go-yaml's `default: {}` / `type: object`, indented by Sprig,
# which pads the empty line after it too).
KRATIX_PROMISE = """\
apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: postgresql
  labels:
    kratix.io/promise-version: v0.0.1
spec:
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: databases.syntasso.io
    spec:
      group: syntasso.io
      names:
        kind: Database
        plural: databases
        singular: database
      scope: Namespaced
      versions:
        - name: v1alpha1
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  default: {}
                  type: object
                  
          served: true
          storage: true
  workflows:
    promise:
      configure:
        []
    resource:
      configure:
        []
"""  # noqa: W293 - the padded empty line is Kratix's


def test_init_promise_writes_kratix_files() -> None:
    files = sc.promise_files("postgresql", "syntasso.io", "Database")
    assert sorted(files) == ["README.md", "example-resource.yaml", "promise.yaml"]
    assert files["promise.yaml"] == KRATIX_PROMISE
    assert files["example-resource.yaml"] == (
        "apiVersion: syntasso.io/v1alpha1\nkind: Database\nmetadata:\n  name: example-postgresql\n"
    )
    assert "ktx init promise postgresql  --group syntasso.io --kind Database" in files["README.md"]
    document = yaml.safe_load(files["promise.yaml"])
    assert document["spec"]["api"] == sc.crd_of("syntasso.io", "Database", "v1alpha1", "databases")
    api = admit_promise(Promise.model_validate(document))
    assert api is not None and (api.group, api.version, api.kind, api.plural) == (
        "syntasso.io",
        "v1alpha1",
        "Database",
        "databases",
    )


def test_init_promise_version_plural_and_split() -> None:
    files = sc.promise_files("postgresql", "syntasso.io", "Database", version="v2", plural="dbs", split=True)
    assert sorted(files) == ["README.md", "api.yaml", "dependencies.yaml", "example-resource.yaml"]
    assert files["dependencies.yaml"] == ""
    crd = yaml.safe_load(files["api.yaml"])
    assert crd["metadata"]["name"] == "dbs.syntasso.io"
    assert crd["spec"]["names"] == {"kind": "Database", "plural": "dbs", "singular": "database"}
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v2"]
    assert yaml.safe_load(files["example-resource.yaml"])["apiVersion"] == "syntasso.io/v2"
    assert "--split" in files["README.md"]


@pytest.mark.parametrize(
    ("name", "group", "kind", "field"),
    [
        ("../etc", "syntasso.io", "Database", "NAME"),
        ("-rf", "syntasso.io", "Database", "NAME"),
        ("Postgres", "syntasso.io", "Database", "NAME"),
        ("postgresql", "syntasso", "Database", "spec.api.spec.group"),
        ("postgresql", "syntasso.io", "data base", "spec.api.spec.names.kind"),
        # YAML a value could smuggle into the template's text is refused before it becomes text.
        ("postgresql", "syntasso.io", "Database\n        shortNames: [db]", "spec.api.spec.names.kind"),
        ("postgresql", "syntasso.io\n      scope: Cluster", "Database", "spec.api.spec.group"),
    ],
)
def test_init_promise_refuses_names_kubernetes_would(name: str, group: str, kind: str, field: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        sc.promise_files(name, group, kind)
    assert any(e.field.startswith(field) for e in refused.value.errors), refused.value


def test_default_container_name_is_kratix_s() -> None:
    assert sc.default_container_name("syntasso/postgres-resource:v1.0.0") == "syntasso-postgres-resource"
    assert sc.default_container_name("localhost/ktx.io/x:v1") == "localhost-ktx-io-x"
    long = sc.default_container_name("registry/" + "a" * 80 + ":v1")
    assert len(long) == 63 and long.startswith("registry-aaa") and long[-8] == "-"


@pytest.mark.parametrize(
    "value",
    [
        "resource/configure",
        "cluster/configure/p",
        "resource/apply/p",
        "resource/configure/../x",
        "resource/configure/P",
    ],
)
def test_pipeline_paths_are_refused_unless_kubernetes_names(value: str) -> None:
    with pytest.raises(InvalidDocument):
        sc.parse_pipeline_path(value)


def test_with_container_appends_creates_and_refuses_duplicates() -> None:
    path = sc.parse_pipeline_path("resource/configure/instance")
    created = sc.with_container([], path, "a", "localhost/x/a:v1")
    assert created == [
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "instance"},
            "spec": {"containers": [{"name": "a", "image": "localhost/x/a:v1"}]},
        }
    ]
    appended = sc.with_container(created, path, "b", "localhost/x/b:v1")
    assert [c["name"] for c in appended[0]["spec"]["containers"]] == ["a", "b"]
    assert created[0]["spec"]["containers"] == [{"name": "a", "image": "localhost/x/a:v1"}]  # not changed in place
    with pytest.raises(InvalidDocument, match="already exists"):
        sc.with_container(appended, path, "a", "localhost/x/a:v2")
    replaced = sc.with_container(appended, path, "a", "localhost/x/a:v2", overwrite=True)
    assert replaced[0]["spec"]["containers"][0]["image"] == "localhost/x/a:v2"
    for name, image in (("a", "--privileged"), ("a/../b", "localhost/x:v1"), ("A", "localhost/x:v1")):
        with pytest.raises(InvalidDocument):
            sc.with_container([], path, name, image)


def test_container_files_build_on_the_project_s_base_image() -> None:
    for language in ("bash", "python"):
        files = sc.container_files(language)
        assert files["Dockerfile"].startswith(f"FROM {sc.BASE_IMAGE}\n")
        assert set(files) == {"Dockerfile", f"scripts/{sc.LANGUAGES[language][0]}"}
    assert "ADD resources resources" in sc.container_files("bash")["Dockerfile"]


def _crd() -> dict:
    return yaml.safe_load(sc.promise_files("postgresql", "syntasso.io", "Database")["promise.yaml"])["spec"]["api"]


def _spec_properties(crd: dict) -> dict:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def test_update_api_adds_nested_and_removes_properties() -> None:
    crd = sc.update_crd(_crd(), ["region:string", "service.port:integer", "service.tls:boolean"])
    assert _spec_properties(crd) == {
        "region": {"type": "string"},
        "service": {"type": "object", "properties": {"port": {"type": "integer"}, "tls": {"type": "boolean"}}},
    }
    crd = sc.update_crd(crd, ["region-", "service.tls-", "absent.deep-"])
    assert _spec_properties(crd) == {"service": {"type": "object", "properties": {"port": {"type": "integer"}}}}
    with pytest.raises(InvalidDocument, match="unsupported property type"):
        sc.update_crd(crd, ["size:array"])
    with pytest.raises(InvalidDocument, match="is not an object"):
        sc.update_crd(sc.update_crd(crd, ["size:string"]), ["size.x:string"])
    with pytest.raises(InvalidDocument, match="invalid property format"):
        sc.update_crd(crd, ["size"])
    with pytest.raises(InvalidDocument, match="invalid property name"):
        sc.update_crd(crd, ["$ref:string"])


def test_update_api_changes_the_gvk_and_the_example() -> None:
    crd = sc.update_crd(_crd(), [], group="myorg.com", kind="Store", version="v1beta3", plural="stores")
    assert crd["metadata"]["name"] == "stores.myorg.com"
    assert crd["spec"]["names"] == {"kind": "Store", "plural": "stores", "singular": "store"}
    example = sc.example_for({"apiVersion": "syntasso.io/v1alpha1", "kind": "Database", "metadata": {}}, crd)
    assert (example["apiVersion"], example["kind"]) == ("myorg.com/v1beta3", "Store")


def test_update_destination_selector_sets_and_removes() -> None:
    promise = {"spec": {}}
    promise = sc.update_destination_selector(promise, "env=dev")
    promise = sc.update_destination_selector(promise, "zone=eu")
    assert promise["spec"]["destinationSelectors"] == [{"matchLabels": {"env": "dev", "zone": "eu"}}]
    promise = sc.update_destination_selector(promise, "zone-")
    assert promise["spec"]["destinationSelectors"] == [{"matchLabels": {"env": "dev"}}]
    for bad in ("env", "-x=y", "env=a b", "bad key-"):
        with pytest.raises(InvalidDocument):
            sc.update_destination_selector(promise, bad)


def test_dependencies_default_their_namespace_and_must_be_objects() -> None:
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}, None]
    assert sc.dependencies_of(documents, "f.yaml") == [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "namespace": "default"}}
    ]
    with pytest.raises(InvalidDocument, match=r"f.yaml\[0\]"):
        sc.dependencies_of(["just text"], "f.yaml")


def test_assemble_joins_split_files() -> None:
    files = sc.promise_files("postgresql", "syntasso.io", "Database", split=True)
    workflows = {
        "resource": {"configure": sc.with_container([], sc.parse_pipeline_path("resource/configure/i"), "c", "x:v1")}
    }
    promise = sc.assemble("postgresql", {sc.API_FILE: yaml.safe_load(files["api.yaml"])}, workflows)
    assert promise["metadata"] == {"name": "postgresql"}
    assert promise["spec"]["workflows"] == workflows and "dependencies" not in promise["spec"]
    sc.check_admitted(promise)


def test_helm_values_become_the_api_as_kratix_makes_it() -> None:
    # helm/examples' hello-world chart's values, which kratix-cli's own test reads.
    values = yaml.safe_load(
        "replicaCount: 1\nimage: {repository: nginx, pullPolicy: IfNotPresent, tag: ''}\nnameOverride: ''\n"
        "fullnameOverride: ''\nserviceAccount: {create: true, annotations: {}, name: ''}\n"
        "service: {type: ClusterIP, port: 80}\nports: [80, 443]\ntolerations: []\nnothing:\n"
    )
    schema = helm_chart.values_schema(values)
    props = schema["properties"]
    assert (schema["type"], schema["default"]) == ("object", {})
    assert props["replicaCount"] == {"type": "number"}  # Helm reads values through JSON: every number is a float
    assert props["serviceAccount"] == {
        "type": "object",
        "properties": {
            "create": {"type": "boolean"},
            "annotations": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "name": {"type": "string"},
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert props["ports"] == {"type": "array", "items": {"type": "number"}}
    assert props["tolerations"] == {"type": "array", "items": {"x-kubernetes-int-or-string": True}}
    assert props["nothing"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert helm_chart.values_schema(None) == {"type": "object", "default": {}}
    files = sc.promise_files(
        "hello",
        "example.ktx.io",
        "Hello",
        subcommand="helm-promise",
        extra="--chart-url ./hello",
        schema=schema,
        resource_configure=helm_chart.helm_pipelines("localhost/hello-helm:v1", "hello"),
    )
    promise = yaml.safe_load(files["promise.yaml"])
    spec = promise["spec"]["api"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec == schema
    (container,) = promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"]
    assert container == {
        "name": "instance-configure",
        "image": "localhost/hello-helm:v1",
        "env": [{"name": "CHART_URL", "value": "/chart/hello"}],
    }
    assert "ktx init helm-promise hello --chart-url ./hello --group example.ktx.io --kind Hello" in files["README.md"]
    split = sc.promise_files(
        "hello",
        "example.ktx.io",
        "Hello",
        split=True,
        schema=schema,
        resource_configure=helm_chart.helm_pipelines("localhost/hello-helm:v1", "hello"),
    )
    assert yaml.safe_load(split["workflows/resource/configure/workflow.yaml"])[0]["metadata"]["name"] == (
        "instance-configure"
    )


def test_helm_values_too_deep_and_chart_names_that_are_not_one_path_component_are_refused() -> None:
    deep: dict = {}
    node = deep
    for _ in range(helm_chart.MAX_VALUES_DEPTH + 1):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(InvalidDocument, match="nests more than"):
        helm_chart.values_schema(deep)
    with pytest.raises(InvalidDocument, match="must be a map"):
        helm_chart.values_schema(["a"])
    for chart in ("..", "-x", "a/b", ""):
        with pytest.raises(InvalidDocument):
            helm_chart.helm_pipelines("localhost/x:v1", chart)


def test_the_command_line_offers_the_languages_the_generator_has() -> None:
    from cli.author import commands

    assert commands.LANGUAGES == tuple(sorted(sc.LANGUAGES))
