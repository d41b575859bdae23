"""The bytes `sigs.k8s.io/yaml.Marshal` writes for a JSON-shaped object, which is how Kratix serialises what it hands
to pipelines (`object.yaml`, written by the pipeline adapter's reader) and its own documents (the canary files).

`sigs.k8s.io/yaml` marshals to JSON, then re-reads the JSON with go-yaml v2 and emits that: every mapping's keys come
out in go-yaml's order (a "natural" sort, not byte order), sequences are not indented under their key, strings that
would read back as another type are double-quoted, multi-line strings are literal blocks, and plain scalars fold at
80 columns. PyYAML differs in each of these (single quotes, byte-order keys, its own folding), so a pipeline that
copies part of the object with yq would see other bytes than under Kratix. This is a port of the parts of go-yaml
v2.4's encoder (encode.go, sorter.go, resolve.go) and emitter (emitterc.go) that such a document reaches.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import re
from typing import Any, Callable

_BEST_WIDTH = 80
_BEST_INDENT = 2
# go-yaml emits a key on one line ("simple key") only up to this many bytes.
_SIMPLE_KEY_MAX = 128

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = "plain", "single", "double", "literal"
_BREAKS = "\r\n\x85\u2028\u2029"


def marshal(obj: Any) -> str:
    """What Kratix's `yaml.Marshal(obj)` returns for the same object."""
    emitter = _Emitter()
    emitter.node(obj, root=True)
    emitter.document_end()
    return "".join(emitter.out)


# --- the encoder: which style each scalar asks for, and the key order ---

_RESOLVE_NON_STR = {
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "true",
    "True",
    "TRUE",
    "on",
    "On",
    "ON",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "false",
    "False",
    "FALSE",
    "off",
    "Off",
    "OFF",
    "",
    "~",
    "null",
    "Null",
    "NULL",
    ".nan",
    ".NaN",
    ".NAN",
    ".inf",
    ".Inf",
    ".INF",
    "+.inf",
    "+.Inf",
    "+.INF",
    "-.inf",
    "-.Inf",
    "-.INF",
    "<<",
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
# What Go's strconv.ParseFloat accepts of a string starting with ".".
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?))?"
)


def _is_timestamp(s: str) -> bool:
    """go-yaml's parseTimestamp: the layouts it tries with Go's time.Parse, including the calendar check."""
    match = _TIMESTAMP.fullmatch(s)
    if match is None:
        return False
    year, month, day = (int(g) for g in match.group(1, 2, 3))
    clock = [int(g) for g in (match.group(4, 5, 6) if match.group(4) else match.group(7, 8, 9)) if g is not None]
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return not clock or (clock[0] < 24 and clock[1] < 60 and clock[2] < 60)


def _resolves_to_str(s: str) -> bool:
    """go-yaml's resolve("", s) == !!str: would the string read back as a string if written plain?"""
    if s in _RESOLVE_NON_STR:
        return False
    hint = s[0]
    if hint == ".":
        return _DOT_FLOAT.fullmatch(s) is None
    if hint in "+-0123456789":
        if _is_timestamp(s):
            return False
        plain = s.replace("_", "")
        return not (_GO_INT.fullmatch(plain) or _YAML_FLOAT.fullmatch(plain) or re.fullmatch(r"-?0b[01]+", plain))
    return True


def _string_style(s: str) -> str:
    if "\n" in s:
        return _LITERAL
    can_use_plain = _resolves_to_str(s) and not (s[:1] in "+-0123456789" and ":" in s and _BASE60_FLOAT.fullmatch(s))
    return _PLAIN if can_use_plain else _DOUBLE


def _go_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent form below 1e-4 and from 1e6 (at least 2
    digits)."""
    sign, digits, exponent = decimal.Decimal(repr(f)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)
    neg = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        exp = point - 1
        return f"{neg}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{neg}{text}{'0' * (point - len(text))}"
    return f"{neg}{text[:point]}.{text[point:]}"


def _number(f: float) -> str:
    """A float goes through Go's encoding/json first, which writes integral values without a point; go-yaml then
    reads those as integers (up to uint64) and writes them back as such."""
    if f.is_integer() and abs(f) < 1e21:
        integral = int(f)
        if -(2**63) <= integral < 2**64:
            return str(integral)
    if f != f or f in (float("inf"), float("-inf")):
        # No JSON has these (the API server would have refused the object); go-yaml's spelling of the float.
        return ".nan" if f != f else ".inf" if f > 0 else "-.inf"
    return _go_float(f)


def _scalar(value: Any) -> tuple[str, str]:
    """(text, requested style) of a JSON scalar, as go-yaml's encoder asks the emitter for it."""
    if value is None:
        return "null", _PLAIN
    if value is True or value is False:
        return ("true" if value else "false"), _PLAIN
    if isinstance(value, int):
        return str(value), _PLAIN
    if isinstance(value, float):
        return _number(value), _PLAIN
    text = str(value)
    return text, _string_style(text)


def _key_less(a: str, b: str) -> bool:
    """go-yaml v2's keyList.Less for string keys: non-letters before letters, digit runs compared as numbers."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        al, bl = a[i].isalpha(), b[i].isalpha()
        if al and bl:
            return a[i] < b[i]
        if al or bl:
            return bl
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        # Go's unicode.IsDigit and `r - '0'`, so a non-ASCII digit counts as go-yaml counts it.
        while ai < len(a) and a[ai].isdecimal():
            an, ai = an * 10 + ord(a[ai]) - 48, ai + 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn, bi = bn * 10 + ord(b[bi]) - 48, bi + 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def sorted_keys(keys: Any) -> list[str]:
    return sorted(keys, key=functools.cmp_to_key(lambda a, b: -1 if _key_less(a, b) else 1 if _key_less(b, a) else 0))


# --- the emitter (go-yaml's port of libyaml), reduced to block collections of JSON values ---


def _printable(c: str) -> bool:
    o = ord(c)
    return c == "\n" or 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)


class _Analysis:
    def __init__(self, value: str):
        self.multiline = False
        if not value:
            self.flow_plain = False
            self.block_plain = True
            self.single_quoted = True
            self.block = False
            return
        block_ind = flow_ind = line_breaks = special = False
        leading_space = leading_break = trailing_space = trailing_break = break_space = space_break = False
        previous_space = previous_break = False
        if value.startswith(("---", "...")):
            block_ind = flow_ind = True
        preceded_by_ws = True
        for i, c in enumerate(value):
            followed_by_ws = i + 1 >= len(value) or value[i + 1] in " \t"
            if i == 0:
                if c in "#,[]{}&*!|>'\"%@`":
                    flow_ind = block_ind = True
                elif c in "?:":
                    flow_ind = True
                    block_ind = block_ind or followed_by_ws
                elif c == "-" and followed_by_ws:
                    flow_ind = block_ind = True
            else:
                if c in ",?[]{}":
                    flow_ind = True
                elif c == ":":
                    flow_ind = True
                    block_ind = block_ind or followed_by_ws
                elif c == "#" and preceded_by_ws:
                    flow_ind = block_ind = True
            if not _printable(c):
                special = True
            if c == " ":
                leading_space = leading_space or i == 0
                trailing_space = trailing_space or i == len(value) - 1
                break_space = break_space or previous_break
                previous_space, previous_break = True, False
            elif c in _BREAKS:
                line_breaks = True
                leading_break = leading_break or i == 0
                trailing_break = trailing_break or i == len(value) - 1
                space_break = space_break or previous_space
                previous_space, previous_break = False, True
            else:
                previous_space = previous_break = False
            preceded_by_ws = c in " \t" or c in _BREAKS
        self.multiline = line_breaks
        self.flow_plain = self.block_plain = self.single_quoted = self.block = True
        if leading_space or leading_break or trailing_space or trailing_break:
            self.flow_plain = self.block_plain = False
        if trailing_space:
            self.block = False
        if break_space:
            self.flow_plain = self.block_plain = self.single_quoted = False
        if space_break or special:
            self.flow_plain = self.block_plain = self.single_quoted = self.block = False
        if line_breaks:
            self.flow_plain = self.block_plain = False
        if flow_ind:
            self.flow_plain = False
        if block_ind:
            self.block_plain = False


_ESCAPES = {
    "\0": "0",
    "\a": "a",
    "\b": "b",
    "\t": "t",
    "\n": "n",
    "\v": "v",
    "\f": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}


class _Emitter:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.open_ended = False
        self.indent = -1
        self.indents: list[int] = []
        self.mapping_context = False
        self.simple_key_context = False

    # low-level writes
    def put(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0

    def write_break(self, c: str) -> None:
        if c == "\n":
            self.put_break()
        else:
            self.out.append(c)
            self.column = 0

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = self.indention = True

    def write_indicator(self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention
        self.open_ended = False

    def increase_indent(self, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif not indentless:
            self.indent += _BEST_INDENT

    def pop_indent(self) -> None:
        self.indent = self.indents.pop()

    # nodes
    def node(self, value: Any, *, root: bool = False, mapping: bool = False, simple_key: bool = False) -> None:
        self.mapping_context, self.simple_key_context = mapping, simple_key
        if isinstance(value, dict):
            self.mapping(value) if value else self.empty("{", "}")
        elif isinstance(value, (list, tuple)):
            self.sequence(list(value)) if value else self.empty("[", "]")
        else:
            self.scalar(*_scalar(value), root=root)

    def empty(self, start: str, end: str) -> None:
        self.write_indicator(start, True, True, False)
        self.increase_indent(True, False)
        self.pop_indent()
        self.write_indicator(end, False, False, False)

    def mapping(self, value: dict[Any, Any]) -> None:
        # JSON keys are strings: a key PyYAML read as another scalar (`1: a`, `on: x`) is its JSON text.
        items = {k if isinstance(k, str) else _scalar(k)[0]: v for k, v in value.items()}
        self.increase_indent(False, False)
        for key in sorted_keys(items):
            self.write_indent()
            if not _Analysis(key).multiline and len(key.encode()) <= _SIMPLE_KEY_MAX:
                self.node(key, mapping=True, simple_key=True)
                self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.node(key, mapping=True)
                self.write_indent()
                self.write_indicator(":", True, False, True)
            self.node(items[key], mapping=True)
        self.pop_indent()

    def sequence(self, items: list[Any]) -> None:
        self.increase_indent(False, self.mapping_context and not self.indention)
        for item in items:
            self.write_indent()
            self.write_indicator("-", True, False, True)
            self.node(item)
        self.pop_indent()

    def scalar(self, text: str, style: str, *, root: bool) -> None:
        analysis = _Analysis(text)
        if self.simple_key_context and analysis.multiline:
            style = _DOUBLE
        if style == _PLAIN and (not analysis.block_plain or (not text and self.simple_key_context)):
            style = _SINGLE
        if style == _SINGLE and not analysis.single_quoted:
            style = _DOUBLE
        if style == _LITERAL and (not analysis.block or self.simple_key_context):
            style = _DOUBLE
        self.increase_indent(True, False)
        breaks_allowed = not self.simple_key_context
        if style == _PLAIN:
            self.write_plain(text, breaks_allowed, root)
        elif style == _SINGLE:
            self.write_single_quoted(text, breaks_allowed)
        elif style == _DOUBLE:
            self.write_double_quoted(text, breaks_allowed)
        else:
            self.write_literal(text)
        self.pop_indent()

    def write_plain(self, value: str, allow_breaks: bool, root: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        self._write_folding(value, lambda i: allow_breaks and value[i + 1 : i + 2] != " ", lambda c: c)
        self.whitespace = self.indention = False
        if root:
            self.open_ended = True

    def write_single_quoted(self, value: str, allow_breaks: bool) -> None:
        self.write_indicator("'", True, False, False)
        self._write_folding(
            value,
            lambda i: allow_breaks and 0 < i < len(value) - 1 and value[i + 1] != " ",
            lambda c: "''" if c == "'" else c,
        )
        self.write_indicator("'", False, False, False)
        self.whitespace = self.indention = False

    def _write_folding(self, value: str, may_fold_at: Callable[[int], bool], escape: Callable[[str], str]) -> None:
        """The loop plain and single-quoted scalars share in the Go emitter: fold at a lone space past the best
        width where the style allows it, keep line breaks, escape the rest."""
        spaces = breaks = False
        for i, c in enumerate(value):
            if c == " ":
                if not spaces and self.column > _BEST_WIDTH and may_fold_at(i):
                    self.write_indent()
                else:
                    self.put(c)
                spaces = True
            elif c in _BREAKS:
                if not breaks and c == "\n":
                    self.put_break()
                self.write_break(c)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(escape(c))
                self.indention = spaces = breaks = False

    def write_double_quoted(self, value: str, allow_breaks: bool) -> None:
        self.write_indicator('"', True, False, False)
        # go-yaml tests for a byte-order mark at the start of the value, not at each character.
        bom = value.startswith("\ufeff")
        spaces = False
        for i, c in enumerate(value):
            if not _printable(c) or bom or c in _BREAKS or c in '"\\':
                o = ord(c)
                if c in _ESCAPES:
                    self.put("\\" + _ESCAPES[c])
                elif o <= 0xFF:
                    self.put(f"\\x{o:02X}")
                elif o <= 0xFFFF:
                    self.put(f"\\u{o:04X}")
                else:
                    self.put(f"\\U{o:08X}")
                spaces = False
            elif c == " ":
                if allow_breaks and not spaces and self.column > _BEST_WIDTH and 0 < i < len(value) - 1:
                    self.write_indent()
                    if value[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(c)
                spaces = True
            else:
                self.put(c)
                spaces = False
        self.write_indicator('"', False, False, False)
        self.whitespace = self.indention = False

    def write_literal(self, value: str) -> None:
        self.write_indicator("|", True, False, False)
        # Only multi-line strings are literal, so `value` is never empty here.
        if value[0] == " " or value[0] in _BREAKS:
            self.write_indicator(str(_BEST_INDENT), False, False, False)
        self.open_ended = False
        if value[-1] not in _BREAKS:
            self.write_indicator("-", False, False, False)
        elif len(value) == 1 or value[-2] in _BREAKS:
            self.write_indicator("+", False, False, False)
            self.open_ended = True
        self.put_break()
        self.indention = self.whitespace = True
        breaks = True
        for c in value:
            if c in _BREAKS:
                self.write_break(c)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(c)
                self.indention = breaks = False

    def document_end(self) -> None:
        self.write_indent()
        if self.open_ended:
            self.write_indicator("...", True, False, False)
            self.write_indent()
