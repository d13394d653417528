"""Reading an input file as UTF-8 text, and saying clearly when it is something else.

Both readers of annotated files (Label Studio JSON, CoNLL) come through here. A UTF-8
byte-order mark is dropped (``utf-8-sig``), as editors on Windows write one. UTF-16 and
UTF-32 files, with or without a byte-order mark, are recognised (by the mark, else by where
the NUL bytes fall: ASCII text in UTF-16-LE has a NUL after every character) and refused with
the encoding named, rather than read as UTF-8 text full of NULs and then reported as "not JSON".
"""

from __future__ import annotations

from pathlib import Path

from conflict_ie.errors import InputError

_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32-LE"),
    (b"\x00\x00\xfe\xff", "UTF-32-BE"),
    (b"\xff\xfe", "UTF-16-LE"),
    (b"\xfe\xff", "UTF-16-BE"),
)


def wide_encoding(raw: bytes) -> str | None:
    """The UTF-16/UTF-32 variant ``raw`` is written in, from its byte-order mark or its NUL bytes; else None.

    Example:
        >>> wide_encoding('[{"id": 1}]'.encode("utf-16-le")), wide_encoding('[1]'.encode("utf-32-be"))
        ('UTF-16-LE', 'UTF-32-BE')
        >>> wide_encoding('["Kyiv"]'.encode("utf-8")) is None
        True
    """
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    head = raw[:4096]
    if len(head) < 2 or b"\x00" not in head:
        return None
    # Share of NUL bytes at each position modulo 4: mostly-ASCII text leaves a clear pattern.
    share = []
    for k in range(4):
        column = head[k::4]
        share.append(column.count(0) / len(column) if column else 0.0)
    # A position with NULs in a good share of its bytes, or with (almost) none; anything else is no pattern.
    if any(0.02 <= s <= 0.2 for s in share):
        return None
    patterns = {(False, True, True, True): "UTF-32-LE", (True, True, True, False): "UTF-32-BE",
                (False, True, False, True): "UTF-16-LE", (True, False, True, False): "UTF-16-BE"}
    return patterns.get(tuple(s > 0.2 for s in share))


def read_text(path: str | Path) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark dropped); :class:`InputError` otherwise.

    Example:
        >>> import tempfile, os
        >>> f = tempfile.NamedTemporaryFile(suffix=".json", delete=False); _ = f.write("[]".encode("utf-16"))
        >>> f.close()
        >>> try:
        ...     read_text(f.name)
        ... except InputError as exc:
        ...     print(str(exc).split(": ", 1)[1][:33])
        UTF-16-LE text, not UTF-8; conver
        >>> os.unlink(f.name)
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    wide = wide_encoding(raw)
    if wide is not None:
        raise InputError(
            f"{wide} text, not UTF-8; convert it first (e.g. iconv -f {wide} -t UTF-8, or save as UTF-8 in the "
            "editor)", source=str(path), reason="not_utf8",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=str(path),
                         reason="not_utf8") from None
    if "\x00" in text:
        raise InputError(f"holds a NUL byte (byte {raw.index(0)}), which UTF-8 text never does; is it UTF-16, or "
                         "not a text file?", source=str(path), reason="not_utf8")
    return text
