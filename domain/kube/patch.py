"""The patches the apiserver accepts, pure: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386), and strategic merge
patch as far as the kinds ktx serves with it need (v1 Secret: maps only, lists replaced, `$patch`/`$retainKeys`
directives honoured, `$setElementOrder` ignored).

Every patch is bounded before it is applied: its operation count and nesting depth.
"""

from __future__ import annotations

import copy
from typing import Any

MAX_OPERATIONS = 1000  # a JSON patch longer than this is refused (the apiserver caps at 10,000 ops per patch)
MAX_DEPTH = 64  # nesting of a patch document; objects the API stores are far shallower


class PatchError(ValueError):
    """A patch that is malformed or cannot be applied (the API's 422 or 400)."""


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth, stopping (with PatchError) as soon as it passes `limit`; iterative so no recursion limit hits."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            raise PatchError(f"the patch is nested more than {limit} levels deep")
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


# --- RFC 7386 ---


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_merge_patch(target: dict[str, Any], patch: Any) -> Any:
    depth(patch)
    return merge_patch(target, patch)


# --- RFC 6902 ---


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer {path!r}: it must be empty or start with '/'")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (not adding and index == len(container)):
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path /{'/'.join(tokens)}: {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, False)]
        else:
            raise PatchError(f"path /{'/'.join(tokens)}: {token!r} is not an object or array")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError(f"path /{'/'.join(tokens)} does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError(f"path /{'/'.join(tokens)}: the parent is not an object or array")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, False)]
    else:
        raise PatchError(f"path /{'/'.join(tokens)} does not exist")
    return doc


def apply_json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be an array of operations")
    if len(operations) > MAX_OPERATIONS:
        raise PatchError(f"the JSON patch has {len(operations)} operations, over the limit of {MAX_OPERATIONS}")
    depth(operations)
    doc = copy.deepcopy(target)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"operation {number}: must be an object with an 'op'")
        name = op["op"]
        if "path" not in op:
            raise PatchError(f"operation {number} ({name}): missing 'path'")
        path = _pointer(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {number} ({name}): missing 'value'")
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif name == "remove":
            doc = _remove(doc, path)
        elif name == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op["value"])) if path else copy.deepcopy(op["value"])
        elif name in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {number} ({name}): missing 'from'")
            source = _pointer(op["from"])
            if name == "move" and path[: len(source)] == source and path != source:
                raise PatchError(f"operation {number} (move): cannot move a value into itself")
            value = copy.deepcopy(_get(doc, source))
            if name == "move":
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif name == "test":
            if not _equal(_get(doc, path), op["value"]):
                raise PatchError(f"operation {number} (test): the value at {op['path']!r} is not the one tested for")
        else:
            raise PatchError(f"operation {number}: unknown op {name!r}")
    return doc


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 and 1.0 are equal, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


# --- strategic merge patch (maps; lists replaced) ---


def apply_strategic_merge_patch(target: dict[str, Any], patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be an object")
    depth(patch)
    return _strategic(target, patch)


def _strategic(target: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if not k.startswith("$setElementOrder/") and k not in ("$patch",)}
    retain = body.pop("$retainKeys", None)
    if directive == "replace":
        return {k: v for k, v in body.items() if v is not None}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown $patch directive {directive!r}")
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in body.items():
        if key.startswith("$"):
            raise PatchError(f"unknown strategic merge patch directive {key!r}")
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _strategic(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result
