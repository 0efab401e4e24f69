"""How figures are written and coloured, the same on `/dashboard` and in `study`'s report."""

from __future__ import annotations

PTM_COLOUR = "#d9822b"
NON_PTM_COLOUR = "#4a7fb5"


def fmt_number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def axis_ticks(top: float) -> list[int]:
    """0 and the 1-2-5 series up to the first value >= ``top`` (at least 1)."""
    ticks = [0]
    magnitude = 1
    while ticks[-1] < top or len(ticks) == 1:
        for step in (1, 2, 5):
            ticks.append(step * magnitude)
            if ticks[-1] >= top:
                break
        magnitude *= 10
    return ticks
