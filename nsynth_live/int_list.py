"""The one parser of integer lists on the command line: ``21-108``, ``0,24,40`` or a mix."""

from __future__ import annotations

from nsynth_live.errors import UserError


def parse_int_list(spec: str, what: str, lo: int | None = None, hi: int | None = None) -> list[int]:
    """Parse ``'21-108'``, ``'0,24,40'`` or a mix (``'21-30,60'``) into sorted unique ints.

    Args:
        spec: the text.
        what: the flag or argument name for error messages.
        lo, hi: allowed range, inclusive (None: unbounded on that side; negative numbers are
            not written in this syntax).

    Raises:
        UserError: malformed item or value outside [lo, hi], naming ``what`` and the value.
    """
    values: set[int] = set()
    items = [s.strip() for s in str(spec).split(",")]
    if not any(items):
        raise UserError(f"{what} {spec!r}: empty")
    example = f"{lo if lo is not None else 1}-{hi if hi is not None else 8}"
    for item in items:
        parts = item.split("-")
        try:
            if len(parts) == 1:
                a = b = int(parts[0])
            elif len(parts) == 2:
                a, b = int(parts[0]), int(parts[1])
            else:
                raise ValueError
        except ValueError:
            raise UserError(f"{what} {spec!r}: {item!r} is not a number or a range like {example}") from None
        if a > b:
            raise UserError(f"{what} {spec!r}: range {item!r} is reversed")
        if (lo is not None and a < lo) or (hi is not None and b > hi):
            bounds = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
            raise UserError(f"{what} {spec!r}: {item!r} is outside {bounds}")
        values.update(range(a, b + 1))
    return sorted(values)
