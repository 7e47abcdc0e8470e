"""Checks the capture structs against codex's own JSON Schema (pure, no I/O).

codex renames and removes fields between releases. Every field a struct in
:mod:`bridge.capture.codex_events` declares is looked up in the definitions
``codex app-server generate-json-schema`` writes (``ServerNotification.json``
and ``ServerRequest.json``): a field that is gone, a field the bridge requires
but codex made optional, or a primitive type that no longer matches is a
problem. :func:`snapshot` cuts the part of the schema those structs use, which
is what ``schemas/codex/`` keeps in the repository.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi

from bridge.capture.codex_events import (
    ITEM_COMMON_FIELDS,
    ITEM_FIELDS,
    NOTIFICATIONS,
    SERVER_REQUESTS,
    WIRE_ONLY_FIELDS,
    ThreadItem,
)

Schema = dict[str, Any]

_PRIMITIVES: dict[type[mi.Type], str] = {
    mi.StrType: "string",
    mi.IntType: "integer",
    mi.BoolType: "boolean",
    mi.FloatType: "number",
}


def method_definitions(schema: Schema) -> dict[str, str]:
    """``{method: params definition name}`` from a ServerNotification/ServerRequest schema."""
    out: dict[str, str] = {}
    for variant in schema.get("oneOf", []):
        props = variant.get("properties", {})
        methods = props.get("method", {}).get("enum", [])
        ref = props.get("params", {}).get("$ref", "")
        for method in methods:
            out[method] = ref.rsplit("/", 1)[-1] if ref else ""
    return out


def _resolve(defs: Schema, node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 50:
        node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        seen += 1
    return node


def _properties(defs: Schema, node: Any) -> tuple[dict[str, Any], set[str]]:
    """Own properties plus those of allOf and oneOf/anyOf branches.

    Required: own, allOf's, and what every oneOf/anyOf branch requires.
    """
    node = _resolve(defs, node)
    if not isinstance(node, dict):
        return {}, set()
    props = dict(node.get("properties", {}))
    required = set(node.get("required", []))
    for branch in node.get("allOf", []):
        more, req = _properties(defs, branch)
        props.update(more)
        required |= req
    for key in ("oneOf", "anyOf"):
        in_every: set[str] | None = None
        for branch in node.get(key, []):
            more, req = _properties(defs, branch)
            for name, value in more.items():
                props.setdefault(name, value)
            in_every = req if in_every is None else in_every & req
        required |= in_every or set()
    return props, required


def _object_node(defs: Schema, node: Any) -> Any:
    """The object schema a struct-typed property points at (through refs, nullable unions, arrays)."""
    node = _resolve(defs, node)
    if not isinstance(node, dict):
        return None
    if "items" in node:
        return _object_node(defs, node["items"])
    if "properties" in node or ("oneOf" in node and not node.get("enum")):
        return node
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in node.get(key, []):
            found = _object_node(defs, branch)
            if found is not None:
                return found
    return None


def _json_types(defs: Schema, node: Any, depth: int = 0) -> set[str] | None:
    """JSON types a property allows, or None when it is too complex to say."""
    node = _resolve(defs, node)
    if not isinstance(node, dict) or depth > 10:
        return None
    if not node:
        return None
    types: set[str] = set()
    declared = node.get("type")
    if isinstance(declared, str):
        types.add(declared)
    elif isinstance(declared, list):
        types.update(t for t in declared if isinstance(t, str))
    if "enum" in node:
        types.update("string" if isinstance(v, str) else "null" if v is None else "other" for v in node["enum"])
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in node.get(key, []):
            more = _json_types(defs, branch, depth + 1)
            if more is None:
                return None
            types |= more
    return types or None


def _unwrap(t: mi.Type) -> tuple[set[str], type[msgspec.Struct] | None, bool]:
    """(primitive JSON types, nested struct class, whether Any is involved) of a field type."""
    prims: set[str] = set()
    struct: type[msgspec.Struct] | None = None
    anyish = False
    stack = [t]
    while stack:
        cur = stack.pop()
        if isinstance(cur, mi.UnionType):
            stack.extend(cur.types)
        elif isinstance(cur, mi.ListType):
            prims.add("array")
            inner = cur.item_type
            if isinstance(inner, mi.StructType):
                struct = inner.cls
        elif isinstance(cur, mi.StructType):
            prims.add("object")
            struct = cur.cls
        elif isinstance(cur, mi.DictType):
            prims.add("object")
        elif isinstance(cur, mi.NoneType):
            prims.add("null")
        elif type(cur) in _PRIMITIVES:
            prims.add(_PRIMITIVES[type(cur)])
        else:
            anyish = True
    return prims, struct, anyish


def _fields(cls: type[msgspec.Struct]) -> tuple[mi.Field, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info.fields


def check_struct(defs: Schema, node: Any, cls: type[msgspec.Struct], where: str) -> list[str]:
    """Problems of ``cls`` against the object schema ``node`` (recursing into nested structs)."""
    if cls is ThreadItem:
        return check_thread_item(defs, node, where)
    props, required = _properties(defs, node)
    skip = WIRE_ONLY_FIELDS.get(cls.__name__, frozenset())
    problems: list[str] = []
    for field in _fields(cls):
        name = field.encode_name
        if name in skip:
            continue
        path = f"{where}.{name}"
        if name not in props:
            problems.append(f"{path}: {cls.__name__} reads it, but codex's schema no longer has it")
            continue
        if field.required and name not in required:
            problems.append(f"{path}: required by {cls.__name__}, optional in codex's schema")
        problems.extend(_check_type(defs, props[name], field, path))
    return problems


def _check_type(defs: Schema, prop: Any, field: mi.Field, path: str) -> list[str]:
    prims, nested, anyish = _unwrap(field.type)
    if nested is not None:
        target = _object_node(defs, prop)
        if target is None:
            return [f"{path}: expected an object in codex's schema"]
        return check_struct(defs, target, nested, path)
    if anyish:
        return []
    allowed = _json_types(defs, prop)
    if allowed is None or "other" in allowed:
        return []
    if "integer" in allowed:
        allowed.add("number")
    if not (prims - {"null"}) & allowed:
        return [f"{path}: the bridge expects {sorted(prims)}, codex's schema says {sorted(allowed)}"]
    return []


def _item_variants(defs: Schema, node: Any) -> dict[str, Any]:
    node = _resolve(defs, node)
    out: dict[str, Any] = {}
    for variant in node.get("oneOf", []) if isinstance(node, dict) else []:
        enum = variant.get("properties", {}).get("type", {}).get("enum", [])
        if enum:
            out[enum[0]] = variant
    return out


def check_thread_item(defs: Schema, node: Any, where: str) -> list[str]:
    """ThreadItem is flat: check each (item type, field) of ITEM_FIELDS in that type's variant."""
    node = _resolve(defs, node)
    variants = _item_variants(defs, node)
    common = dict(node.get("properties", {})) if isinstance(node, dict) else {}
    by_name = {f.encode_name: f for f in _fields(ThreadItem)}
    problems: list[str] = []
    declared = set(ITEM_COMMON_FIELDS).union(*ITEM_FIELDS.values())
    for name in by_name:
        if name not in declared:
            problems.append(f"{where}.{name}: ThreadItem field missing from ITEM_FIELDS")
    for item_type, names in ITEM_FIELDS.items():
        variant = variants.get(item_type)
        if variant is None:
            problems.append(f"{where}[{item_type}]: codex's schema no longer has this item type")
            continue
        props = {**common, **variant.get("properties", {})}
        for name in (*ITEM_COMMON_FIELDS, *names):
            if name not in props:
                problems.append(f"{where}[{item_type}].{name}: the bridge reads it, codex's schema no longer has it")
            elif name in by_name:
                problems.extend(_check_type(defs, props[name], by_name[name], f"{where}[{item_type}].{name}"))
    return problems


def check_all(notifications: Schema, requests: Schema) -> list[str]:
    """Every problem of every typed method's struct against the generated schemas."""
    problems: list[str] = []
    for schema, table in ((notifications, NOTIFICATIONS), (requests, SERVER_REQUESTS)):
        defs = schema.get("definitions", {})
        methods = method_definitions(schema)
        for method, cls in table.items():
            name = methods.get(method)
            if not name:
                problems.append(f"{method}: codex's schema no longer has this method")
                continue
            problems.extend(check_struct(defs, defs.get(name, {}), cls, method))
    return problems


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _closure(defs: Schema, roots: set[str]) -> dict[str, Any]:
    keep: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in keep or name not in defs:
            continue
        keep[name] = defs[name]
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(found - keep.keys())
    return dict(sorted(keep.items()))


def snapshot(notifications: Schema, requests: Schema, codex_version: str) -> Schema:
    """The committed part of the schema: every method's params name, and the definitions the structs use."""
    note_methods = method_definitions(notifications)
    req_methods = method_definitions(requests)
    return {
        "codexVersion": codex_version,
        "generatedBy": "python -m tests.support.schema_dump --refresh (inside the fence)",
        "notificationMethods": dict(sorted(note_methods.items())),
        "requestMethods": dict(sorted(req_methods.items())),
        "notificationDefinitions": _closure(
            notifications.get("definitions", {}), {note_methods[m] for m in NOTIFICATIONS if m in note_methods}
        ),
        "requestDefinitions": _closure(
            requests.get("definitions", {}), {req_methods[m] for m in SERVER_REQUESTS if m in req_methods}
        ),
    }


def schemas_from_snapshot(snap: Schema) -> tuple[Schema, Schema]:
    """Rebuild minimal ServerNotification/ServerRequest schemas from a :func:`snapshot`."""

    def rebuild(methods: dict[str, str], defs: Schema) -> Schema:
        one_of = [
            {"properties": {"method": {"enum": [m]}, "params": {"$ref": f"#/definitions/{d}"}}}
            for m, d in methods.items()
        ]
        return {"oneOf": one_of, "definitions": defs}

    return (
        rebuild(snap["notificationMethods"], snap["notificationDefinitions"]),
        rebuild(snap["requestMethods"], snap["requestDefinitions"]),
    )
