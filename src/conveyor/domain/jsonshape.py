"""One JSON shape for frozen dataclasses, declared on their fields.

A field is written under its name, converted by its type: pairs
(``tuple[tuple[str, V], ...]``) become an object, other tuples a list, a nested
dataclass an object. :func:`shape` metadata on a field renames it, adds a suffix to its
text, leaves it out while unset, gathers it with others into a sub-object, or writes the
rows of a tuple as objects. Fields left out while unset are written after the others,
sub-objects last. Reading reverses the shape and checks each value against the field's
type, so a new field needs no code here and a document of the wrong shape raises
``ValueError`` (the plan cache then compiles again).

The reader and writer of a class are each generated as code once, from its fields, when
first used (a no-op run only reads plans; a reader fills the object's dictionary when its
``__init__`` only stores fields): a cached plan of thousands of steps is read at every
``conveyor run``, and a loop over field specs costs three times the hand-written code
(msgspec would do the same, at an import cost the start-up of ``conveyor run`` does not
have room for).
"""

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple, Self, TypeVar

Convert = Callable[[Any], Any]
T = TypeVar("T")


def shape(
    *,
    key: str | None = None,
    suffix: str = "",
    omit: bool = False,
    group: str | None = None,
    rows: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Field metadata: ``field(default=..., metadata=shape(key="if", suffix="()"))``.

    ``omit``: written only when it differs from its default. ``group``: written as
    ``{group: {key: value, ...}}`` with the other fields of that group, the whole group
    only when one of them is set. ``rows``: a tuple of tuples written as objects."""
    return {"json": (key, suffix, omit, group, rows)}


class JsonShape:
    """``to_json``/``from_json`` for a dataclass, in the shape its fields declare."""

    def to_json(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return decode(cls, data)


_ENCODERS: dict[type, Convert] = {}
_DECODERS: dict[type, Convert] = {}
_FOUND: dict[type, tuple["_Field", ...]] = {}


def encode(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    write = _ENCODERS.get(cls) or _codec(cls, "encode")
    result: dict[str, Any] = write(obj)
    return result


def decode(cls: type[T], data: Any) -> T:
    read = _DECODERS.get(cls) or _codec(cls, "decode")
    try:
        result: T = read(data)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"not a {cls.__name__} in JSON: {exc}") from None
    return result


class _Field(NamedTuple):
    """One field of a shaped class as its codec reads and writes it."""

    name: str
    key: str
    suffix: str
    omit: bool
    group: str | None
    default: Any
    factory: Callable[[], Any] | None
    """The field's ``default_factory``: called for each object read without the field."""
    write: Convert
    read: Convert
    check: tuple[str, Any] | None
    """(condition on ``v``, the set ``ALLOWED`` in it) for a scalar, inlined."""


def _codec(cls: type, which: Literal["encode", "decode"]) -> Convert:
    """``cls``'s encoder or decoder, written out as code (once: kept in ``_ENCODERS`` or
    ``_DECODERS``); each is compiled only when asked for (a no-op run reads plans, never
    writes them)."""
    found = _FOUND.get(cls) or _FOUND.setdefault(cls, _fields(cls))
    names: dict[str, Any] = {
        "cls": cls,
        "_object": _object,
        "_unsuffix": _unsuffix,
        "_wrong": _wrong,
        "_missing": _missing,
        "_new": object.__new__,
        "_set": object.__setattr__,
    }
    for i, f in enumerate(found):
        names[f"d{i}"], names[f"w{i}"], names[f"r{i}"] = f.default, f.write, f.read
        names[f"f{i}"] = f.factory

    def written(i: int, f: _Field) -> str:
        text = f"obj.{f.name}" if f.write is _same else f"w{i}(obj.{f.name})"
        return f"{text} + {f.suffix!r}" if f.suffix else text

    plain = [(i, f) for i, f in enumerate(found) if not f.omit and f.group is None]
    lines = ["def encode(obj):", "    out = {"]
    lines += [f"        {f.key!r}: {written(i, f)}," for i, f in plain]
    lines.append("    }")
    for i, f in enumerate(found):
        if f.omit and f.group is None:
            lines.append(f"    if obj.{f.name} != d{i}: out[{f.key!r}] = {written(i, f)}")
    groups = list(dict.fromkeys(f.group for f in found if f.group is not None))
    for group in groups:
        members = [(i, f) for i, f in enumerate(found) if f.group == group]
        unset = " or ".join(f"obj.{f.name} != d{i}" for i, f in members)
        inner = ", ".join(f"{f.key!r}: {written(i, f)}" for i, f in members if not f.omit)
        lines.append(f"    if {unset}:")
        lines.append(f"        g = {{{inner}}}")
        for i, f in members:  # an ``omit`` member of a group: written when set
            if f.omit:
                lines.append(f"        if obj.{f.name} != d{i}: g[{f.key!r}] = {written(i, f)}")
        lines.append(f"        out[{group!r}] = g")
    lines.append("    return out")
    if which == "decode":
        lines = _decoder(cls, found, groups, names)
    exec("\n".join(lines), names)  # text built from field declarations, never from data
    made: Convert = names[which]
    (_ENCODERS if which == "encode" else _DECODERS)[cls] = made
    return made


def _decoder(
    cls: type, found: tuple[_Field, ...], groups: list[str], names: dict[str, Any]
) -> list[str]:
    """The lines of ``decode(data)``; the checks' allowed sets go into ``names``."""
    direct = _plain_init(cls)
    lines = ["def decode(data):", f"    data = _object(data, {cls.__name__!r})", "    values = {}"]
    lines += [f"    g{n} = _object(data.get({g!r}) or {{}}, {g!r})" for n, g in enumerate(groups)]
    for i, f in enumerate(found):
        where = "data" if f.group is None else f"g{groups.index(f.group)}"
        lines.append(f"    if {f.key!r} in {where}:")
        lines.append(f"        v = {where}[{f.key!r}]")
        if f.suffix:
            lines.append(f"        v = _unsuffix(v, {f.suffix!r})")
        if f.check:  # a scalar, checked here: a call per field would cost more
            names[f"c{i}"] = f.check[1]
            where_text = f"{cls.__name__}.{f.name}"
            lines.append(f"        if not ({f.check[0].replace('ALLOWED', f'c{i}')}):")
            lines.append(f"            raise _wrong({where_text!r}, v)")
        elif f.read is not _same:
            lines.append(f"        v = r{i}(v)")
        lines.append(f"        values[{f.name!r}] = v")
        if not direct:
            continue
        if f.factory is not None:
            lines.append(f"    else: values[{f.name!r}] = f{i}()")
        elif f.default is dataclasses.MISSING:
            lines.append(f"    else: raise _missing({cls.__name__!r}, {f.name!r})")
        else:
            lines.append(f"    else: values[{f.name!r}] = d{i}")
    if direct:  # the values are the instance's dictionary, in field order, as __init__ makes it
        lines += ["    obj = _new(cls)", "    _set(obj, '__dict__', values)", "    return obj"]
    else:
        lines.append("    return cls(**values)")
    return lines


def _fields(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        key, suffix, omit, group, rows = f.metadata.get("json", (None, "", False, None, ()))
        factory = None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            factory = f.default_factory
            default = factory()
        else:
            default = dataclasses.MISSING
        where = f"{cls.__name__}.{f.name}"
        hint = hints[f.name]
        write, read, check = _writer(hint, rows), _reader(hint, rows, where), _check(hint)
        found.append(
            _Field(f.name, key or f.name, suffix, omit, group, default, factory, write, read, check)
        )
    return tuple(found)


def _plain_init(cls: type) -> bool:
    """Whether ``cls``'s ``__init__`` is the one ``dataclasses`` wrote and does nothing but
    store its fields: a reader may then fill the instance's dictionary itself. A frozen
    dataclass's ``__init__`` stores each field through ``object.__setattr__``, about a
    microsecond a field: a cached plan's 40-field steps cost 40 us each that way."""
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    return (
        code is not None
        and code.co_filename == "<string>"  # generated by dataclasses, not written
        and not hasattr(cls, "__post_init__")
        and not hasattr(cls, "__slots__")
        and all(f.init for f in dataclasses.fields(cls))
        and not any(
            f._field_type is dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
            for f in cls.__dataclass_fields__.values()  # type: ignore[attr-defined]
        )
    )


def _missing(cls_name: str, name: str) -> ValueError:
    return ValueError(f"not a {cls_name} in JSON: its {name} is missing")


def _wrong(where: str, value: Any) -> ValueError:
    return ValueError(f"{where} cannot be {value!r:.80} in JSON")


_CONDITIONS = {
    str: "isinstance(v, str)",
    bool: "isinstance(v, bool)",
    int: "isinstance(v, int) and not isinstance(v, bool)",  # JSON has no bool ints
}


def _check(hint: Any) -> tuple[str, Any] | None:
    """A condition that ``v`` fits ``hint``, for the scalar types (None for others)."""
    if hint in _CONDITIONS:
        return _CONDITIONS[hint], None
    if typing.get_origin(hint) is typing.Literal:
        return "isinstance(v, str) and v in ALLOWED", frozenset(typing.get_args(hint))
    inner = _optional(hint)
    if inner in _CONDITIONS:
        return f"v is None or {_CONDITIONS[inner]}", None
    return None


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"not a {what} in JSON: {value!r} is not an object")
    return value


def _unsuffix(value: Any, suffix: str) -> Any:
    return value.removesuffix(suffix) if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


def _optional(hint: Any) -> Any:
    """``X`` of ``X | None``, or None for any other type."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    present = [a for a in typing.get_args(hint) if a is not type(None)]
    return present[0] if len(present) == 1 and len(typing.get_args(hint)) == 2 else None


def _repeated(hint: Any) -> Any:
    """``X`` of ``tuple[X, ...]``, or None for any other type."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def _pair_value(hint: Any) -> Any:
    """``V`` of ``tuple[str, V]`` (a pair of a mapping), or None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[0] is str:
        return args[1]
    return None


def _writer(hint: Any, rows: tuple[str, ...] = ()) -> Convert:
    """Field value -> JSON value."""
    if dataclasses.is_dataclass(hint):
        return encode
    inner = _optional(hint)
    if inner is not None:
        write = _writer(inner, rows)
        return _same if write is _same else (lambda v: None if v is None else write(v))
    item = _repeated(hint)
    if item is None:
        return _same
    if rows:
        return lambda v: [dict(zip(rows, row, strict=True)) for row in v]
    value = _pair_value(item)
    if value is not None:
        write = _writer(value)
        return dict if write is _same else (lambda v: {k: write(x) for k, x in v})
    write = _writer(item)
    return list if write is _same else (lambda v: [write(x) for x in v])


@functools.cache
def _as_function(condition: str) -> Callable[[Any], bool]:
    """An inlined check as a function (for a scalar inside a list or an optional), compiled
    once per check text: a codec's scalar fields inline theirs and never call it."""
    fits: Callable[[Any], bool] = eval(f"lambda v: {condition}")
    return fits


def _reader(hint: Any, rows: tuple[str, ...], where: str) -> Convert:
    """JSON value -> field value, checked against the field's type."""

    def wrong(v: Any) -> ValueError:
        return _wrong(where, v)

    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        cls = hint
        return lambda v: decode(cls, v)
    if hint in _CONDITIONS:
        fits = _as_function(_CONDITIONS[hint])

        def scalar(v: Any) -> Any:
            if not fits(v):
                raise wrong(v)
            return v

        return scalar
    if hint is float:

        def number(v: Any) -> float:
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise wrong(v)
            return float(v)

        return number
    if typing.get_origin(hint) is typing.Literal:
        allowed = frozenset(typing.get_args(hint))

        def literal(v: Any) -> Any:
            if not isinstance(v, str) or v not in allowed:
                raise wrong(v)
            return v

        return literal
    inner = _optional(hint)
    if inner is not None:
        read = _reader(inner, rows, where)
        return lambda v: None if v is None else read(v)
    item = _repeated(hint)
    if item is None:
        return _same  # Any: JSON as it is
    return _tuple_reader(item, rows, where, wrong)


def _tuple_reader(
    item: Any, rows: tuple[str, ...], where: str, wrong: Callable[[Any], ValueError]
) -> Convert:
    if rows:
        read = _reader(typing.get_args(item)[0], (), where)

        def table(v: Any) -> tuple[Any, ...]:
            if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
                raise wrong(v)
            return tuple(tuple(read(r.get(k)) for k in rows) for r in v)

        return table
    value = _pair_value(item)
    if value is not None:
        kinds = _kinds(value)
        read = _reader(value, (), where)

        def mapping(v: Any) -> tuple[tuple[str, Any], ...]:
            if not isinstance(v, dict):
                raise wrong(v)
            if not v:
                return ()
            if kinds is None:
                return tuple((k, read(x)) for k, x in v.items())
            if not set(map(type, v.values())) <= kinds:
                raise wrong(v)
            return tuple(v.items())

        return mapping
    kinds = _kinds(item)
    read = _reader(item, (), where)

    def sequence(v: Any) -> tuple[Any, ...]:
        if not isinstance(v, list):
            raise wrong(v)
        if not v:
            return ()
        if kinds is None:
            return tuple(map(read, v))
        if not set(map(type, v)) <= kinds:
            raise wrong(v)
        return tuple(v)

    return sequence


def _kinds(hint: Any) -> frozenset[type] | None:
    """The types a JSON value of ``hint`` may have, when a look at them is all it takes
    (text, Any); None when each value is read on its own."""
    if hint is str:
        return frozenset({str})
    if hint is Any:
        return frozenset({str, int, float, bool, type(None), list, dict})
    return None


# -- JSON values that carry the text they were encoded as ------------------------------
# A cache hit's records row repeats what the run already encoded: its fingerprint's parts
# (the canonical text the key digests) and its cache entry's outputs (the text read from
# the records). A repository that stores JSON columns as text writes ``text`` as it is;
# any other reader sees a plain dict, list or tuple. None is changed after it is made
# (nothing edits a record's parts or outputs in place: they are replaced whole). A copy
# made without the text (``dataclasses.asdict``, ``copy``) carries none and is encoded.


class TextDict(dict[str, Any]):
    """A JSON object and its text."""

    __slots__ = ("text",)

    def __init__(self, value: Mapping[str, Any] | None = None, text: str | None = None) -> None:
        super().__init__(value or {})
        self.text = text


class TextList(list[Any]):
    """A JSON array (of values that encode as themselves or by ``to_json``) and its text."""

    __slots__ = ("text",)

    def __init__(self, value: Iterable[Any] = (), text: str | None = None) -> None:
        super().__init__(value)
        self.text = text


class TextTuple(tuple[Any, ...]):
    """A JSON array as a tuple (a cache entry's outputs) and its text."""

    text: str | None

    def __new__(cls, value: Iterable[Any] = (), text: str | None = None) -> "TextTuple":
        made = super().__new__(cls, value)
        made.text = text
        return made


_CARRIERS = (TextDict, TextList, TextTuple)


def json_text(value: object) -> str | None:
    """The text ``value`` carries, if it is one of these."""
    return value.text if type(value) in _CARRIERS else None  # type: ignore[attr-defined]
