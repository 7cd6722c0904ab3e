"""Timing, the text table and the JSON report every benchmark writes."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsynth_live.errors import UserError


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A right-aligned text table."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """:func:`format_table` on stdout."""
    print(format_table(headers, rows))


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write JSON atomically (a crash never leaves half a report).

    Raises:
        UserError: naming the path when it cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"{path}: cannot write the report ({err.strerror or err})") from None
