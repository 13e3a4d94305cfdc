"""Read MXNet `-symbol.json` graphs into plain dataclasses, and parse their string attributes.

The JSON holds `nodes` in topological order (each with `op`, `name`, string attributes and
`inputs` as [node id, output index(, version)]), `arg_nodes` and `heads`. Files from MXNet
>= 0.9 keep attributes in `attrs`; older ones split them into `param` (operator parameters)
and `attr` (user attributes). Both are merged here so the translator sees one dict.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import MXNetSymbolError


@dataclass(frozen=True)
class Node:
    """One graph node: `op` is "null" for variables (the data input and every parameter)."""

    index: int
    op: str
    name: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class SymbolGraph:
    nodes: tuple[Node, ...]
    heads: tuple[tuple[int, int], ...]
    arg_nodes: tuple[int, ...]
    mxnet_version: int | None = None

    def variables(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "null"]


def read_symbol(path: str | Path) -> SymbolGraph:
    """Parse a `-symbol.json` file; a clear MXNetSymbolError if it is not an MXNet graph."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MXNetSymbolError(f"symbol file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MXNetSymbolError(f"cannot read symbol file {path}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MXNetSymbolError(f"{path} is not valid JSON ({exc}); pass the `name-symbol.json` file") from None
    except RecursionError:  # MXNet writes a flat node list; deep nesting is not a symbol file
        raise MXNetSymbolError(f"{path} nests JSON too deeply to be an MXNet symbol file "
                               "(MXNet writes a flat list of nodes); pass the `name-symbol.json` file") from None
    try:
        return parse_symbol(doc, source=str(path))
    except RecursionError:
        raise MXNetSymbolError(f"{path}: its attributes nest too deeply for an MXNet symbol file") from None


def parse_symbol(doc: Any, *, source: str = "<symbol>") -> SymbolGraph:
    """Build a SymbolGraph from already-decoded symbol JSON."""
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or "heads" not in doc:
        raise MXNetSymbolError(
            f"{source} is not an MXNet symbol graph: expected a JSON object with 'nodes' and 'heads'")
    nodes = []
    for i, raw in enumerate(doc["nodes"]):
        if not isinstance(raw, dict) or "op" not in raw or "name" not in raw:
            raise MXNetSymbolError(f"{source}: node {i} lacks 'op' or 'name'")
        attrs: dict[str, str] = {}
        for key in ("param", "attr", "attrs"):  # later keys win, as in MXNet's own upgrade
            value = raw.get(key) or {}
            if not isinstance(value, dict):
                raise MXNetSymbolError(f"{source}: node {i} ({raw['name']}) has a non-object {key!r}")
            attrs.update({str(k): str(v) for k, v in value.items()})
        inputs = tuple(_entry(e, i, len(doc["nodes"]), source, raw["name"]) for e in raw.get("inputs", []))
        for src, _ in inputs:
            if src >= i:
                raise MXNetSymbolError(
                    f"{source}: node {i} ({raw['name']}) reads node {src}, which does not come before it")
        nodes.append(Node(i, str(raw["op"]), str(raw["name"]), attrs, inputs))
    heads = tuple(_entry(e, None, len(nodes), source, "heads") for e in doc["heads"])
    if not heads:
        raise MXNetSymbolError(f"{source} has no heads (outputs)")
    version = None
    meta = doc.get("attrs") or {}
    if isinstance(meta, dict) and isinstance(meta.get("mxnet_version"), list) and len(meta["mxnet_version"]) == 2:
        version = int(meta["mxnet_version"][1])
    arg_nodes = tuple(int(a) for a in doc.get("arg_nodes", []))
    return SymbolGraph(tuple(nodes), heads, arg_nodes, version)


def _entry(entry: Any, node: int | None, n_nodes: int, source: str, where: str) -> tuple[int, int]:
    if not isinstance(entry, list) or len(entry) not in (2, 3) or not all(isinstance(v, int) for v in entry):
        raise MXNetSymbolError(f"{source}: malformed input entry {entry!r} in {where}")
    if not 0 <= entry[0] < n_nodes or entry[1] < 0:
        raise MXNetSymbolError(f"{source}: entry {entry!r} in {where} points outside the graph")
    return int(entry[0]), int(entry[1])


# ---- attribute parsing: MXNet stores every parameter as a Python-ish string -------------------

class Attrs:
    """Typed access to one node's string attributes, with errors that name the node."""

    def __init__(self, node: Node):
        self.node = node
        self.raw = node.attrs

    def _fail(self, key: str, value: str, kind: str) -> MXNetSymbolError:
        return MXNetSymbolError(
            f"{self.node.op} node {self.node.name!r}: attribute {key}={value!r} is not {kind}")

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] not in ("None", "")

    def str(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key)
        return default if value is None or value == "None" else value

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None or value == "None":
            return default
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise self._fail(key, value, "a boolean")

    def float(self, key: str, default: float | None = None) -> float | None:
        value = self.raw.get(key)
        if value is None or value == "None":
            return default
        try:
            return float(value)
        except ValueError:
            raise self._fail(key, value, "a number") from None

    def int(self, key: str, default: int | None = None) -> int | None:
        value = self.float(key, None)
        if value is None:
            return default
        if value != int(value):
            raise self._fail(key, self.raw[key], "an integer")
        return int(value)

    def tuple(self, key: str, default: tuple | None = None) -> tuple | None:
        """A tuple of ints (None allowed inside, as in slice's begin/end); a bare int gives (int,)."""
        value = self.raw.get(key)
        if value is None or value == "None":
            return default
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise self._fail(key, value, "a tuple") from None
        if isinstance(parsed, (int, float)) or parsed is None:
            parsed = (parsed,)
        if not isinstance(parsed, (tuple, list)):
            raise self._fail(key, value, "a tuple")
        out = []
        for v in parsed:
            if v is None:
                out.append(None)
            elif isinstance(v, (int, float)) and float(v) == int(v):
                out.append(int(v))
            else:
                raise self._fail(key, value, "a tuple of integers")
        return tuple(out)
