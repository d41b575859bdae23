import pytest

from domain.errors import InvalidDocument
from domain.layout import id5, nested_dir, promise_nested_root, resource_nested_root, static_nested_root
from domain.scheduling import (
    DestinationSelector,
    DestinationView,
    SelectorSource,
    build_groups,
    effective_selector,
    matches,
    parse_destination_selectors,
    squash,
)


def test_kratix_directory_ids():
    assert id5(".") == "5058f"
    assert id5("dest1") == "ba6cb"
    assert id5("dest2") == "76355"


def test_paths_match_kratix_layout():
    resource = resource_nested_root("default", "testbundle", "kratix-test", "resource-pipeline0")
    assert (
        nested_dir("worker-1", resource, "dest1")
        == "worker-1/resources/default/testbundle/kratix-test/resource-pipeline0/ba6cb"
    )
    assert (
        nested_dir("worker-1", promise_nested_root("testbundle", "setup-deps"), ".")
        == "worker-1/dependencies/testbundle/setup-deps/5058f"
    )
    assert (
        nested_dir("test-path", static_nested_root("test-promise"), ".") == "test-path/dependencies/test-promise/5058f"
    )
    assert nested_dir(".", resource_nested_root("ns", "p", "r", "pipe"), ".") == "resources/ns/p/r/pipe/5058f"


def test_promise_selectors_win_on_key_clash():
    selectors = [
        DestinationSelector(match_labels={"env": "dev"}, source=SelectorSource.PROMISE_WORKFLOW),
        DestinationSelector(match_labels={"env": "prod"}, source=SelectorSource.PROMISE),
        DestinationSelector(match_labels={"env": "staging", "zone": "eu"}, source=SelectorSource.RESOURCE_WORKFLOW),
    ]
    assert effective_selector(selectors) == {"env": "prod", "zone": "eu"}


def test_squash_first_entry_wins():
    assert squash(
        [{"environment": "dev"}, {"environment": "prod", "pci": "false"}, {"pci": "true", "secure": "false"}]
    ) == {"environment": "dev", "pci": "false", "secure": "false"}


@pytest.mark.parametrize(
    "labels,selector,expected",
    [
        ({}, {}, True),
        ({"env": "dev"}, {}, True),
        ({"env": "dev"}, {"env": "dev"}, True),
        ({"env": "dev", "zone": "eu"}, {"env": "dev"}, True),
        ({"env": "dev"}, {"env": "prod"}, False),
        ({"env": "dev"}, {"env": "dev", "zone": "eu"}, False),
        ({}, {"env": "dev"}, False),
    ],
)
def test_matching_table_from_kratix_docs(labels, selector, expected):
    assert matches(DestinationView(name="d", labels=labels), selector) is expected


def test_strict_match_labels_refuses_selectorless_work():
    strict = DestinationView(name="d", labels={"env": "dev"}, strict_match_labels=True)
    assert not matches(strict, {})
    assert matches(DestinationView(name="d", strict_match_labels=True), {})


def test_directory_groups_ignore_promise_selectors():
    entries = parse_destination_selectors(
        [
            {"directory": "dest1", "matchLabels": {"target": "worker-1"}},
            {"matchLabels": {"extra": "yes"}},
        ]
    )
    groups = build_groups(
        ["dest1/configmap.yaml", "namespace.yaml"], entries, SelectorSource.RESOURCE_WORKFLOW, {"environment": "dev"}
    )
    assert [(g.directory, g.files) for g in groups] == [("dest1", ["dest1/configmap.yaml"]), (".", ["namespace.yaml"])]
    assert effective_selector(groups[0].selectors) == {"target": "worker-1"}
    assert effective_selector(groups[1].selectors) == {"extra": "yes", "environment": "dev"}


def test_empty_root_group_is_omitted():
    entries = parse_destination_selectors([{"directory": "a", "matchLabels": {"x": "y"}}])
    assert [g.directory for g in build_groups(["a/f.yaml"], entries, SelectorSource.RESOURCE_WORKFLOW, {})] == ["a"]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"matchLabels": {}}, "must be a list"),
        ([{"matchLabels": {"a": "b"}}, {"directory": "x"}], "index 1 has no selectors"),
        (
            [{"directory": "baz/", "matchLabels": {"a": "b"}}, {"directory": "baz", "matchLabels": {"a": "c"}}],
            "duplicate",
        ),
        ([{"directory": "foo/bar", "matchLabels": {"a": "b"}}], "sub-directories are not allowed"),
    ],
)
def test_destination_selector_file_rules(data, message):
    with pytest.raises(InvalidDocument, match=message):
        parse_destination_selectors(data)
