"""api/kube/warnings.py: admission warnings as the apiserver sends them (k8s.io/apiserver's warning recorder)."""

from __future__ import annotations

from starlette.responses import Response

from api.kube.warnings import ITEM_MAX, TOTAL_MAX, bounded, header_value, with_warnings


def test_each_warning_is_one_299_header_quoted_as_rfc_7230_has_it() -> None:
    response = with_warnings(Response(), ['say "hi" \\ bye', "café"])
    values = [v for k, v in response.raw_headers if k == b"warning"]
    assert values == [b'299 - "say \\"hi\\" \\\\ bye"', '299 - "café"'.encode()]
    assert header_value("x") == b'299 - "x"'


def test_duplicates_and_control_characters_are_dropped_and_the_size_is_bounded() -> None:
    assert bounded(["a", "a", "b\nc", "", "d"]) == ["a", "d"]
    many = bounded([f"{i:04d}" + "x" * 1000 for i in range(30)])
    assert all(len(w) == ITEM_MAX for w in many) and sum(map(len, many)) <= TOTAL_MAX
    assert len(many) == TOTAL_MAX // ITEM_MAX and many[0].startswith("0000")
