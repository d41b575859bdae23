"""Label and field selectors as apimachinery parses and matches them."""

from __future__ import annotations

import pytest

from domain.kube.selectors import (
    SELECTOR_MAX_CHARS,
    SELECTOR_MAX_TERMS,
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

OBJECTS = {
    "a": {"metadata": {"name": "a", "namespace": "dev", "labels": {"env": "dev", "tier": "web"}}},
    "b": {"metadata": {"name": "b", "namespace": "prod", "labels": {"env": "prod"}}},
    "c": {"metadata": {"name": "c", "namespace": "dev"}},
}


def selected(selector: str) -> list[str]:
    requirements = parse_label_selector(selector)
    return sorted(name for name, obj in OBJECTS.items() if labels_match(requirements, obj))


@pytest.mark.parametrize(
    "selector, names",
    [
        ("", ["a", "b", "c"]),
        ("env=dev", ["a"]),
        ("env==dev", ["a"]),
        ("env!=dev", ["b", "c"]),  # != matches objects without the label, as in Kubernetes
        ("env in (dev, prod)", ["a", "b"]),
        ("env notin (dev)", ["b", "c"]),
        ("tier", ["a"]),
        ("!tier", ["b", "c"]),
        ("env=dev,tier=web", ["a"]),
        ("env=dev, !tier", []),
        ("env in ()", []),
        ("tier=", []),
        ("example.com/team=x", []),
    ],
)
def test_label_selector_grammar(selector: str, names: list[str]) -> None:
    assert selected(selector) == names


@pytest.mark.parametrize(
    "selector",
    ["env=", "=dev", "env in dev", "env in (dev", "env=dev,", "env dev", "env in (a b)", "-bad-=x", "env=a b", "!"],
)
def test_malformed_label_selectors_are_refused(selector: str) -> None:
    if selector == "env=":
        assert parse_label_selector(selector)[0].values == ("",)  # an empty value is a value
        return
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_selectors_are_bounded() -> None:
    with pytest.raises(SelectorError, match="characters"):
        parse_label_selector("a" * (SELECTOR_MAX_CHARS + 1))
    with pytest.raises(SelectorError, match="requirements"):
        parse_label_selector(",".join(f"k{i}" for i in range(SELECTOR_MAX_TERMS + 1)))
    with pytest.raises(SelectorError, match="values"):
        parse_label_selector("k in (" + ",".join(f"v{i}" for i in range(100)) + ")")


def test_field_selectors_on_declared_paths_only() -> None:
    allowed = {"metadata.name", "metadata.namespace"}
    terms = parse_field_selector("metadata.namespace=dev,metadata.name!=a", allowed)
    assert [n for n, o in OBJECTS.items() if fields_match(terms, o)] == ["c"]
    assert [n for n, o in OBJECTS.items() if fields_match(parse_field_selector("metadata.name==b", allowed), o)] == [
        "b"
    ]
    with pytest.raises(SelectorError, match="field label not supported: spec.team"):
        parse_field_selector("spec.team=x", allowed)
    with pytest.raises(SelectorError, match="can't understand"):
        parse_field_selector("metadata.name", allowed)
    escaped = parse_field_selector(r"metadata.name=a\,b", allowed)
    assert escaped[0].value == "a,b"
