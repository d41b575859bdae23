"""Turn YAML/JSON text into documents, and platform documents into typed models with field-level errors."""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml
from pydantic import ValidationError

from domain.documents import PLATFORM_KINDS, KubeModel
from domain.names import KRATIX_API_VERSION, LABEL_MAX, NAME_PATTERN
from domain.errors import InvalidDocument, errors_from_pydantic
from domain.labels import metadata_errors
from domain.validation import validate_name

# Kubernetes objects are rarely more than 20 levels deep (a Promise's embedded schema adds two per nested property);
# the bound keeps the recursive composer, validator and JSON encoder far from Python's recursion limit.
MAX_DEPTH = 100
# Aliases are allowed (Promises share snippets with them) but PyYAML shares the aliased node, so a "billion laughs"
# document loads instantly and only explodes when validated or serialised. Like the Kubernetes decoder, bound what
# aliases may add: nodes counted as if every alias were written out, beyond the nodes written, per request.
MAX_ALIAS_NODES = 100_000


_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedInput(ValueError):
    """The text is not YAML/JSON, or a document is not a mapping with apiVersion and kind."""


class _KubeLoader(yaml.SafeLoader):
    """YAML read as Kubernetes reads it (sigs.k8s.io/yaml): JSON-shaped values only, so every document can be
    validated and stored as JSON."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_DEPTH:
            raise MalformedInput(
                f"document nested deeper than {MAX_DEPTH} levels (line {self.peek_event().start_mark.line + 1})"
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[str, Any]:
        # JSON object keys are strings; Kubernetes turns `1:`, `true:` and `~:` keys into "1", "true" and "null"
        # (key by key: as Python keys, 1 and True would be one).
        written = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        self.flatten_mapping(node)  # puts the merged pairs first: the keys written after them override them
        first_written = len(node.value) - written
        mapping: dict[str, Any] = {}
        seen: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            name = _json_key(key)
            if index >= first_written:
                # Kubernetes refuses a key written twice (`key "a" already set in map`) rather than keep the last.
                if name in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {name!r} in a mapping", key_node.start_mark
                    )
                seen.add(name)
            mapping[name] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_scalar(self, node: Any) -> Any:
        value = super().construct_scalar(node)
        if isinstance(value, str) and _SURROGATE.search(value):
            # JSON writes a character beyond U+FFFF as an escaped UTF-16 pair, which PyYAML leaves as two halves: join
            # them. A half without its pair is no character: no UTF-8 can carry it to Temporal, Git or a pipeline.
            try:
                value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
            except UnicodeDecodeError:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a string holds a lone UTF-16 surrogate (an escape "
                    "such as \\ud800 without its pair): not Unicode text",
                    node.start_mark,
                ) from None
        return value

    def construct_yaml_int(self, node: Any) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python's int-from-text limit, which guards against quadratic parsing
            raise yaml.constructor.ConstructorError(
                None, None, f"integer too large: more than {sys.get_int_max_str_digits()} digits", node.start_mark
            ) from None

    def construct_yaml_float(self, node: Any) -> float:
        value = super().construct_yaml_float(node)
        if value != value or value in (float("inf"), float("-inf")):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} has no JSON equivalent", node.start_mark
            )
        return value

    def construct_timestamp_as_text(self, node: Any) -> str:
        # Kubernetes keeps an unquoted date as the string written (goyaml does so for interface{} targets).
        return self.construct_scalar(node)

    def refuse_tag(self, node: Any) -> Any:
        raise yaml.constructor.ConstructorError(None, None, f"tag {node.tag} has no JSON equivalent", node.start_mark)


_KubeLoader.add_constructor("tag:yaml.org,2002:timestamp", _KubeLoader.construct_timestamp_as_text)
_KubeLoader.add_constructor("tag:yaml.org,2002:int", _KubeLoader.construct_yaml_int)
_KubeLoader.add_constructor("tag:yaml.org,2002:float", _KubeLoader.construct_yaml_float)
for _tag in ("binary", "set", "omap", "pairs"):
    _KubeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _KubeLoader.refuse_tag)


def _json_key(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _count_nodes(root: yaml.Node) -> tuple[int, int]:
    """(written, expanded) node counts of a composed document, without expanding it: an alias is the same node
    object as its anchor, so each node's expanded size is computed once, bottom-up, without recursion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            continue
        if id(node) in open_nodes:
            raise MalformedInput(f"recursive alias at line {node.start_mark.line + 1}: a document must be a tree")
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise MalformedInput(f"recursive alias at line {child.start_mark.line + 1}: a document must be a tree")
            if id(child) not in sizes:
                stack.append((child, False))
    return len(sizes), sizes[id(root)]


def decode_body(body: bytes) -> str:
    """A request body as text: UTF-8 only, as Kubernetes reads it (a UTF-8 byte-order mark is allowed)."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MalformedInput("the body is UTF-16 (it starts with a UTF-16 byte-order mark): send UTF-8")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"the body is not UTF-8: byte {body[exc.start]:#04x} at offset {exc.start} ({exc.reason})"
        ) from None


def _load_yaml(text: str) -> list[Any]:
    loaded: list[Any] = []
    from_aliases = 0
    try:
        loader = _KubeLoader(text)  # reading starts here: a control character is refused before anything is parsed
    except yaml.YAMLError as exc:
        raise MalformedInput(f"malformed YAML: {exc}") from exc
    try:
        while loader.check_node():
            node = loader.get_node()
            written, expanded = _count_nodes(node)
            from_aliases += expanded - written
            if from_aliases > MAX_ALIAS_NODES:
                raise MalformedInput(
                    f"document {len(loaded)}: YAML aliases expand to {expanded} nodes from {written} written; "
                    f"aliases may add at most {MAX_ALIAS_NODES} nodes to a request"
                )
            loaded.append(loader.construct_document(node))
    except yaml.YAMLError as exc:
        raise MalformedInput(f"malformed YAML: {exc}") from exc
    finally:
        loader.dispose()
    return [d for d in loaded if d is not None]


def load_metadata(text: str) -> Any:
    """A pipeline's metadata file (status.yaml, workflow-control.yaml...) read as the API reads a request: JSON-shaped
    values, depth and alias expansion bounded (a 1 KB "billion laughs" status.yaml would otherwise take the worker's
    memory). The first document, as Kratix's yaml.Unmarshal reads it; None for an empty file. Raises MalformedInput."""
    documents = _load_yaml(text)
    return documents[0] if documents else None


def load_documents(text: str) -> list[dict[str, Any]]:
    documents: list[Any] = []
    for doc in _load_yaml(text):
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            documents.extend(doc["items"])
        else:
            documents.append(doc)
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict):
            raise MalformedInput(f"document {index}: expected a mapping, got {type(doc).__name__}")
        missing = [f for f in ("apiVersion", "kind") if not doc.get(f)]
        if missing:
            raise MalformedInput(f"document {index}: missing {', '.join(missing)}")
        not_text = [f for f in ("apiVersion", "kind") if not isinstance(doc[f], str)]
        if not_text:
            raise MalformedInput(f"document {index}: {', '.join(not_text)} must be a string")
    return documents


def is_platform_document(doc: dict[str, Any]) -> bool:
    return doc.get("apiVersion") == KRATIX_API_VERSION and doc.get("kind") in PLATFORM_KINDS


def parse_platform_document(doc: dict[str, Any]) -> KubeModel:
    model = PLATFORM_KINDS[doc["kind"]]
    body = {k: v for k, v in doc.items() if k != "status"}
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        raise InvalidDocument(errors_from_pydantic(exc)) from exc
    name_errors = validate_name("metadata.name", parsed.metadata.name, max_length=LABEL_MAX, pattern=NAME_PATTERN)  # type: ignore[attr-defined]
    metadata = body.get("metadata")
    name_errors += metadata_errors(metadata) if isinstance(metadata, dict) else []
    if name_errors:
        raise InvalidDocument(name_errors)
    return parsed
