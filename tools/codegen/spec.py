"""The spec model: Kafka's JSON message schemas read into Python objects, and merged across
schema generations (Kafka releases).

Reading a schema file
---------------------
Kafka's schemas are JSON with ``//`` line comments. :func:`strip_comments` removes a comment
only when the ``//`` stands outside a JSON string (an "about" text may well contain ``//``, e.g.
a URL), then :func:`load_schema` builds a :class:`SchemaFile`: its version range, flexible
versions, and a tree of :class:`FieldSpec` / :class:`StructSpec`. Struct types named by a field
without inline ``fields`` are looked up in the file's ``commonStructs``.

Merging generations
-------------------
Kafka 4 dropped the oldest protocol versions from its files while adding new ones, so the
schemas come in generations, newest first (Kafka 4.4's jars, then Kafka 3.9's kafka-clients,
which still declares every version from 0: tools/generate_messages.py). For every (message,
version) we take the definition from the newest file whose ``validVersions`` covers it.
:func:`merge` turns several files for one message into a
:class:`MessageModel`: one class tree whose fields are the union of the files' fields (matched by
name, struct by struct), and for each version a *view* taken from the file that owns that
version. The generated code only ever looks at views, so which file a version came from stops
mattering after this module.

Everything here is stdlib-only: the CI check runs the generator with the bare system python.
"""

from __future__ import annotations

import json
import keyword
import os
import re
from dataclasses import dataclass, field as dc_field

PRIMITIVE_TYPES = {
    "bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64",
    "string", "bytes", "uuid", "records",
}


class SchemaError(Exception):
    """A schema file the generator cannot make sense of."""


# ---------------------------------------------------------------------------------------------
# Reading JSON with comments

def strip_comments(text: str) -> str:
    """Remove ``//`` comments that stand outside JSON strings; keep line structure intact."""
    out = []
    i = 0
    n = len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                # An escaped character (\" or \\) never ends the string.
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
            i += 1
            continue
        if ch == "/" and i + 1 < n and text[i + 1] == "/":
            # Skip to the end of the line; the newline itself stays.
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Version ranges

@dataclass(frozen=True)
class Versions:
    """An inclusive version range; ``none`` is the empty range. ``hi`` None means open-ended."""

    lo: int
    hi: int | None

    @staticmethod
    def parse(text: str | None, *, default: "Versions | None" = None) -> "Versions":
        if text is None:
            if default is None:
                raise SchemaError("missing version range")
            return default
        text = str(text).strip()
        if text == "none":
            return NONE
        if text.endswith("+"):
            return Versions(int(text[:-1]), None)
        if "-" in text:
            lo, hi = text.split("-", 1)
            return Versions(int(lo), int(hi))
        return Versions(int(text), int(text))

    def __contains__(self, version: int) -> bool:
        if self.lo < 0:
            return False
        return version >= self.lo and (self.hi is None or version <= self.hi)

    def __str__(self) -> str:
        if self.lo < 0:
            return "none"
        if self.hi is None:
            return f"{self.lo}+"
        if self.hi == self.lo:
            return str(self.lo)
        return f"{self.lo}-{self.hi}"


NONE = Versions(-1, -1)


# ---------------------------------------------------------------------------------------------
# One schema file

@dataclass
class FieldSpec:
    """One field of a struct, as written in one schema file."""

    name: str                      # JSON name, e.g. "TopicData"
    type: str                      # JSON type, e.g. "[]TopicProduceData", "int32", "Cursor"
    versions: Versions
    nullable: Versions
    tagged: Versions
    tag: int | None
    ignorable: bool
    default: object                # raw JSON default or None when absent
    map_key: bool
    entity_type: str | None
    flexible_override: Versions | None  # field-level "flexibleVersions" (strings/bytes only)
    about: str
    struct: "StructSpec | None" = None  # element struct for struct and []struct types

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.struct is not None


@dataclass
class StructSpec:
    name: str
    versions: Versions
    fields: list[FieldSpec]


@dataclass
class SchemaFile:
    source: str                    # where it was read, e.g. "kafka-clients-4.4.0/ProduceRequest.json"
    name: str                      # e.g. "ProduceRequest"
    type: str                      # request, response, header, data, metadata
    api_key: int | None
    valid: Versions
    flexible: Versions
    listeners: tuple[str, ...]
    root: StructSpec
    structs: dict[str, StructSpec]  # every struct by name (inline and common)


def load_schema(path: str) -> SchemaFile:
    with open(path, encoding="utf-8") as handle:
        return parse_schema(handle.read(), path)


def parse_schema(text: str, source: str) -> SchemaFile:
    """One schema file's text; ``source`` names it in errors and in the generated docstrings."""
    path = source
    try:
        doc = json.loads(strip_comments(text))
    except ValueError as exc:
        raise SchemaError(f"{path}: not JSON after stripping comments: {exc}") from None
    valid = Versions.parse(doc.get("validVersions"))
    flexible = Versions.parse(doc.get("flexibleVersions"), default=NONE)
    structs: dict[str, StructSpec] = {}
    common_raw = {c["name"]: c for c in doc.get("commonStructs", [])}
    common: dict[str, StructSpec] = {}

    def build_fields(raw_fields, parent_versions: Versions) -> list[FieldSpec]:
        fields = []
        for raw in raw_fields:
            tagged = Versions.parse(raw.get("taggedVersions"), default=NONE)
            # As in Kafka, a tagged field may leave out "versions": it exists where it is tagged.
            versions = Versions.parse(raw.get("versions"), default=tagged if tagged != NONE else None)
            spec = FieldSpec(
                name=raw["name"],
                type=raw["type"].strip(),
                versions=versions,
                nullable=Versions.parse(raw.get("nullableVersions"), default=NONE),
                tagged=tagged,
                tag=None if raw.get("tag") is None else int(raw["tag"]),
                ignorable=bool(raw.get("ignorable", False)),
                default=raw.get("default"),
                map_key=bool(raw.get("mapKey", False)),
                entity_type=raw.get("entityType"),
                flexible_override=(
                    Versions.parse(raw["flexibleVersions"]) if "flexibleVersions" in raw else None
                ),
                about=raw.get("about", ""),
            )
            if (spec.tag is None) != (tagged == NONE):
                raise SchemaError(f"{path}: field {spec.name}: tag and taggedVersions go together")
            element = spec.element_type
            if "fields" in raw:
                if element in structs:
                    raise SchemaError(f"{path}: struct {element} defined twice")
                struct = StructSpec(element, versions, [])
                structs[element] = struct
                struct.fields = build_fields(raw["fields"], versions)
                spec.struct = struct
            elif element not in PRIMITIVE_TYPES:
                if element not in common_raw:
                    raise SchemaError(f"{path}: field {spec.name}: unknown type {element}")
                spec.struct = common_struct(element)
            fields.append(spec)
        return fields

    def common_struct(name: str) -> StructSpec:
        if name not in common:
            raw = common_raw[name]
            struct = StructSpec(name, Versions.parse(raw.get("versions"), default=Versions(0, None)), [])
            common[name] = struct
            structs[name] = struct
            struct.fields = build_fields(raw["fields"], struct.versions)
        return common[name]

    root = StructSpec(doc["name"], valid, [])
    if "fields" not in doc and valid != NONE:
        raise SchemaError(f"{path}: no fields")
    # Kafka 4 keeps a field-less file with "validVersions": "none" for each removed API.
    root.fields = build_fields(doc.get("fields", []), valid)
    # Common structs nobody references are still part of the file; build them for completeness.
    for name in common_raw:
        common_struct(name)
    return SchemaFile(
        source=source,
        name=doc["name"],
        type=doc["type"],
        api_key=doc.get("apiKey"),
        valid=valid,
        flexible=flexible,
        listeners=tuple(doc.get("listeners", ())),
        root=root,
        structs=structs,
    )


# ---------------------------------------------------------------------------------------------
# Names

_CAMEL_BOUNDARY_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_BOUNDARY_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """``TopicData`` -> ``topic_data``, ``ISRNodes`` -> ``isr_nodes``, ``group`` -> ``group``."""
    s = _CAMEL_BOUNDARY_1.sub(r"\1_\2", name)
    s = _CAMEL_BOUNDARY_2.sub(r"\1_\2", s).lower()
    if keyword.iskeyword(s) or s in {"unknown_tagged_fields"}:
        s += "_"
    return s


def api_module_name(message_name: str) -> str:
    """``ProduceRequest`` -> ``produce``; record schemas keep their whole name."""
    for suffix in ("Request", "Response"):
        if message_name.endswith(suffix):
            return snake_case(message_name[: -len(suffix)])
    return snake_case(message_name)


# ---------------------------------------------------------------------------------------------
# The merged model the emitter works from

@dataclass
class FieldView:
    """A field as it appears on the wire at one version."""

    model: "FieldModel"
    spec: FieldSpec             # the spec from the file owning this version
    nullable: bool
    tagged: bool
    tag: int | None
    flexible: bool              # compact encodings for this field at this version


@dataclass
class FieldModel:
    """A field of a generated class (union over all versions and files)."""

    name: str                   # JSON name
    attr: str                   # Python attribute name
    type: str                   # JSON type (element type after [] for arrays)
    is_array: bool
    struct: "StructModel | None"
    default: object             # Python value description; see emit.default_expr
    default_null: bool
    ignorable: bool
    about: str
    map_key: bool
    entity_type: str | None
    present_mask: int = 0       # bit v set: field is on the wire at version v
    nullable_mask: int = 0
    tagged_mask: int = 0
    tag: int | None = None


@dataclass
class StructModel:
    name: str
    fields: list[FieldModel] = dc_field(default_factory=list)
    # version -> (regular field views in wire order, tagged field views sorted by tag)
    views: dict[int, tuple[list[FieldView], list[FieldView]]] = dc_field(default_factory=dict)
    flexible: dict[int, bool] = dc_field(default_factory=dict)
    children: list["StructModel"] = dc_field(default_factory=list)  # struct types used by fields
    parent: "StructModel | None" = None


@dataclass
class MessageModel:
    name: str
    type: str
    api_key: int | None
    versions: list[int]
    flexible_min: int | None
    listeners: tuple[str, ...]
    root: StructModel
    structs: dict[str, StructModel]
    sources: dict[int, str]     # version -> schema file path (relative) that defined it


def _version_owner(files: list[SchemaFile], version: int) -> SchemaFile | None:
    for schema in files:  # newest first
        if version in schema.valid:
            return schema
    return None


def _parse_default(spec: FieldSpec) -> tuple[object, bool]:
    """(python default value, default-is-null) for a field spec."""
    raw = spec.default
    t = spec.element_type
    if spec.is_array:
        if raw == "null":
            return None, True
        if raw not in (None, ""):
            raise SchemaError(f"array field {spec.name} has unsupported default {raw!r}")
        return [], False
    if raw == "null" or (raw is None and t == "records"):
        return None, True
    if spec.struct is not None:
        return "struct", False
    if t in ("int8", "int16", "uint16", "int32", "uint32", "int64"):
        if raw is None or raw == "":
            return 0, False
        if isinstance(raw, bool):
            raise SchemaError(f"int field {spec.name}: bool default")
        return (raw if isinstance(raw, int) else int(str(raw), 0)), False
    if t == "float64":
        return (0.0 if raw in (None, "") else float(raw)), False
    if t == "bool":
        if raw in (None, "", False, "false"):
            return False, False
        if raw in (True, "true"):
            return True, False
        raise SchemaError(f"bool field {spec.name}: default {raw!r}")
    if t == "string":
        return ("" if raw is None else str(raw)), False
    if t == "bytes":
        return b"", False
    if t == "uuid":
        if raw not in (None, ""):
            raise SchemaError(f"uuid field {spec.name}: default {raw!r} unsupported")
        return "zero-uuid", False
    raise SchemaError(f"field {spec.name}: no default for type {t}")


def merge(files: list[SchemaFile]) -> MessageModel:
    """Merge the files defining one message (newest first) into one model."""
    newest = files[0]
    all_versions = sorted(
        {v for schema in files for v in range(schema.valid.lo, (schema.valid.hi or schema.valid.lo) + 1)}
    )
    owners = {v: _version_owner(files, v) for v in all_versions}
    structs: dict[str, StructModel] = {}

    # Merge struct by struct, keyed by (owning file, struct name) -> model. A struct is matched
    # across files by the path of field names that leads to it, so a renamed struct still
    # becomes one class (named as in the newest file declaring it).
    def merge_struct(pairs: list[tuple[SchemaFile, StructSpec]], parent: StructModel | None) -> StructModel:
        name = pairs[0][1].name
        model = structs.get(name)
        if model is None:
            model = StructModel(name=name, parent=parent)
            structs[name] = model
            fresh = True
        else:
            fresh = False
        if fresh:
            by_name: dict[str, FieldModel] = {}
            child_pairs: dict[str, list[tuple[SchemaFile, StructSpec]]] = {}
            for schema, struct in pairs:
                for spec in struct.fields:
                    fm = by_name.get(spec.name)
                    if fm is None:
                        default, default_null = _parse_default(spec)
                        fm = FieldModel(
                            name=spec.name,
                            attr=snake_case(spec.name),
                            type=spec.element_type,
                            is_array=spec.is_array,
                            struct=None,
                            default=default,
                            default_null=default_null,
                            ignorable=spec.ignorable,
                            about=spec.about,
                            map_key=spec.map_key,
                            entity_type=spec.entity_type,
                        )
                        by_name[spec.name] = fm
                        model.fields.append(fm)
                    elif fm.is_array != spec.is_array or (
                        (fm.type in PRIMITIVE_TYPES or spec.element_type in PRIMITIVE_TYPES)
                        and fm.type != spec.element_type
                    ):
                        raise SchemaError(f"{name}.{spec.name}: type differs between schema files")
                    if spec.struct is not None:
                        child_pairs.setdefault(spec.name, []).append((schema, spec.struct))
            attrs = [f.attr for f in model.fields]
            if len(set(attrs)) != len(attrs):
                raise SchemaError(f"{name}: two fields map onto one attribute name: {attrs}")
            for fname, cp in child_pairs.items():
                fm = by_name[fname]
                fm.struct = merge_struct(cp, model)
                fm.type = fm.struct.name
                if fm.struct not in model.children:
                    model.children.append(fm.struct)
        return model

    # Pair each file's root with itself; struct pairing then follows field names.
    root = merge_struct([(schema, schema.root) for schema in files], None)
    root.name = newest.name

    # Per-version views: walk the owning file's tree for each version.
    def fill_views(model: StructModel, struct: StructSpec, schema: SchemaFile, version: int) -> None:
        if version in model.views:
            return
        by_name = {f.name: f for f in model.fields}
        regular: list[FieldView] = []
        tagged: list[FieldView] = []
        flexible_struct = version in schema.flexible
        for spec in struct.fields:
            if version not in spec.versions:
                continue
            fm = by_name[spec.name]
            is_tagged = version in spec.tagged
            if is_tagged and not flexible_struct:
                raise SchemaError(f"{schema.source}: tagged field {spec.name} in a non-flexible version")
            flexible = flexible_struct
            if spec.flexible_override is not None:
                flexible = version in spec.flexible_override and flexible_struct
            view = FieldView(
                model=fm, spec=spec, nullable=version in spec.nullable, tagged=is_tagged,
                tag=spec.tag if is_tagged else None, flexible=flexible,
            )
            fm.present_mask |= 1 << version
            if view.nullable:
                fm.nullable_mask |= 1 << version
            if is_tagged:
                fm.tagged_mask |= 1 << version
                fm.tag = spec.tag
                tagged.append(view)
            else:
                regular.append(view)
            if spec.struct is not None:
                fill_views(fm.struct, spec.struct, schema, version)
        tagged.sort(key=lambda v: v.tag)
        tags = [v.tag for v in tagged]
        if len(set(tags)) != len(tags):
            raise SchemaError(f"{schema.source}: duplicate tag in {struct.name} at v{version}")
        model.views[version] = (regular, tagged)
        model.flexible[version] = flexible_struct

    sources = {}
    for version, schema in owners.items():
        fill_views(root, schema.root, schema, version)
        sources[version] = schema.source
    # Structs never reached at some version still need an (empty) view there only if a parent
    # references them at that version, which fill_views already guarantees.

    flexible_versions = [v for v in all_versions if v in owners[v].flexible]
    if flexible_versions and flexible_versions != [v for v in all_versions if v >= flexible_versions[0]]:
        # FLEXIBLE_MIN_VERSION and the header-version rule assume "flexible from N on".
        raise SchemaError(f"{newest.name}: flexible versions {flexible_versions} are not a tail of the range")
    return MessageModel(
        name=newest.name,
        type=newest.type,
        api_key=newest.api_key,
        versions=all_versions,
        flexible_min=flexible_versions[0] if flexible_versions else None,
        listeners=newest.listeners,
        root=root,
        structs=structs,
        sources=sources,
    )


# ---------------------------------------------------------------------------------------------
# Loading every schema


@dataclass
class SpecSet:
    apis: dict[int, tuple[MessageModel, MessageModel]]   # api key -> (request, response)
    headers: list[MessageModel]
    records: list[MessageModel]
    notes: list[str]


def schemas_in_folder(folder: str) -> list[SchemaFile]:
    """The ``*.json`` schema files directly in ``folder`` (e.g. a Kafka checkout's
    clients/src/main/resources/common/message), named ``<folder name>/<file>`` as sources."""
    if not os.path.isdir(folder):
        raise SchemaError(f"{folder}: not a folder")
    label = os.path.basename(os.path.normpath(folder))
    schemas = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                schemas.append(parse_schema(handle.read(), f"{label}/{name}"))
    return schemas


def load_spec(generations: list[list[SchemaFile]]) -> SpecSet:
    """Merge schema generations, newest first: each (message, version) comes from the first
    generation with a file for that message whose ``validVersions`` covers the version."""
    notes: list[str] = []
    # Group request/response files by (type, api key); header and data files by name.
    by_api: dict[tuple[str, int], list[SchemaFile]] = {}
    by_name: dict[str, list[SchemaFile]] = {}
    for generation in generations:  # newest first
        seen: dict[tuple, str] = {}
        for schema in generation:
            if schema.type in ("request", "response"):
                key = (schema.type, schema.api_key)
                by_api.setdefault(key, []).append(schema)
            else:
                key = (schema.name,)
                by_name.setdefault(schema.name, []).append(schema)
            if key in seen:
                # Within one generation neither file is the newer one: refuse to guess.
                raise SchemaError(f"{schema.source} and {seen[key]} define the same message")
            seen[key] = schema.source

    def prune(files: list[SchemaFile]) -> list[SchemaFile]:
        """Drop files that own no version (fully covered by a newer one)."""
        kept = []
        for schema in files:
            lo, hi = schema.valid.lo, schema.valid.hi if schema.valid.hi is not None else schema.valid.lo
            if any(_version_owner(files, v) is schema for v in range(lo, hi + 1)):
                kept.append(schema)
        names = {s.name for s in files}
        if len(names) > 1:
            dropped = [s.name for s in files if s not in kept]
            notes.append(
                f"{files[0].type} key {files[0].api_key}: names {sorted(names)}; "
                f"versions taken from {[(s.name, str(s.valid)) for s in kept]}"
                + (f"; {dropped} fully superseded" if dropped else "")
            )
        return kept

    apis: dict[int, tuple[MessageModel, MessageModel]] = {}
    keys = sorted({k for (_, k) in by_api})
    for key in keys:
        req_files = prune(by_api.get(("request", key), []))
        resp_files = prune(by_api.get(("response", key), []))
        if not req_files and not resp_files:
            continue  # removed from Kafka, and no older generation declares it
        if not req_files or not resp_files:
            raise SchemaError(f"api key {key}: request or response schema missing")
        kept_names = [f.name for f in req_files]
        if len({api_module_name(n) for n in kept_names}) > 1:
            raise SchemaError(f"api key {key}: versions split between differently named files {kept_names}")
        apis[key] = (merge(req_files), merge(resp_files))
    headers = []
    records = []
    for name in sorted(by_name):
        files = prune(by_name[name])
        model = merge(files)
        if model.type == "header":
            headers.append(model)
        else:
            records.append(model)
    return SpecSet(apis=apis, headers=headers, records=records, notes=notes)
