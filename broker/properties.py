"""Kafka's properties-file format (``java.util.Properties.load``), parsed without Java.

The rules, as ``Properties.load`` documents them:

* A *natural* line ends at ``\\n``, ``\\r`` or ``\\r\\n``. A natural line that ends in an odd
  number of backslashes continues on the next one; the continuation's leading whitespace
  (space, tab, form feed) is dropped, and so is the backslash.
* A line whose first non-whitespace character is ``#`` or ``!`` is a comment; blank lines are
  skipped. A comment is never continued, even if it ends in a backslash.
* The key runs from the first non-whitespace character to the first unescaped ``=``, ``:`` or
  whitespace. Whitespace after the key is skipped, then at most one ``=`` or ``:``, then
  whitespace again; the rest of the logical line is the value (trailing whitespace kept).
* Escapes in keys and values: ``\\t \\n \\r \\f``, ``\\uXXXX``, and a backslash before any other
  character stands for that character (so ``\\=``, ``\\:``, ``\\ ``, ``\\\\``).
  A malformed ``\\uXXXX`` is an error (Java throws IllegalArgumentException).
* A later key replaces an earlier one.

Encoding: Java's ``load(InputStream)``, which Kafka uses, reads ISO-8859-1. We read UTF-8 when
the bytes are valid UTF-8 (what editors write today) and fall back to ISO-8859-1 otherwise,
so a file Kafka reads correctly reads the same here unless it holds non-ASCII Latin-1 text
that also happens to be valid UTF-8 (practically never).
"""

from __future__ import annotations

_WHITESPACE = " \t\f"
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesError(ValueError):
    """A properties text that ``java.util.Properties`` would refuse (a malformed ``\\u``)."""


def _logical_lines(text: str):
    """Yield the logical lines of ``text``: comments and blank lines dropped, continuations
    joined (the escape-processing pass comes later, so backslashes other than the joining
    one are kept as written)."""
    natural = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    index = 0
    while index < len(natural):
        line = natural[index].lstrip(_WHITESPACE)
        index += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while True:
            trailing = len(line) - len(line.rstrip("\\"))
            if trailing % 2 == 1:
                parts.append(line[:-1])
                if index >= len(natural):
                    break
                line = natural[index].lstrip(_WHITESPACE)
                index += 1
                continue
            parts.append(line)
            break
        yield "".join(parts)


def _unescape(raw: str) -> str:
    out = []
    i = 0
    n = len(raw)
    while i < n:
        char = raw[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= n:
            # A lone trailing backslash (only reachable at the end of the file): Java drops it.
            i += 1
            continue
        escaped = raw[i + 1]
        if escaped == "u":
            digits = raw[i + 2 : i + 6]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PropertiesError(f"malformed \\uxxxx encoding in {raw!r}")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_SIMPLE_ESCAPES.get(escaped, escaped))
        i += 2
    return "".join(out)


def _split_key_value(line: str) -> tuple[str, str]:
    i = 0
    n = len(line)
    while i < n:
        char = line[i]
        if char == "\\":
            i += 2
            continue
        if char in "=:" or char in _WHITESPACE:
            break
        i += 1
    key_end = min(i, n)
    j = key_end
    while j < n and line[j] in _WHITESPACE:
        j += 1
    if j < n and line[j] in "=:":
        j += 1
        while j < n and line[j] in _WHITESPACE:
            j += 1
    return line[:key_end], line[j:]


def parse_properties(text: str) -> dict[str, str]:
    """Parse properties text into an ordered dict of key -> value (later keys win)."""
    result: dict[str, str] = {}
    for line in _logical_lines(text):
        raw_key, raw_value = _split_key_value(line)
        result[_unescape(raw_key)] = _unescape(raw_value)
    return result


def decode_properties_bytes(data: bytes) -> str:
    """Decode a properties file's bytes: UTF-8 if valid, else ISO-8859-1 (see module doc)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_properties_file(path) -> dict[str, str]:
    with open(path, "rb") as handle:
        return parse_properties(decode_properties_bytes(handle.read()))
