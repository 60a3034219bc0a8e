"""Reporting shared by the latency benchmarks (bench/slack_ack.py, bench/teams_ack.py):
percentiles, one line per measured series, the ratio of ours to the bare SDK app, and the
min–max of several runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at `fraction` (0.5 for p50) of the sorted values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_line(label: str, values: Sequence[float]) -> str:
    """`label  p50 … p99 … max … mean … n=…`, in milliseconds."""
    if not values:
        return f"  {label:<26} (nothing measured)"
    return (
        f"  {label:<26} p50 {percentile(values, 0.5) * 1000:8.2f} ms   "
        f"p99 {percentile(values, 0.99) * 1000:8.2f} ms   "
        f"max {max(values) * 1000:8.2f} ms   "
        f"mean {statistics.fmean(values) * 1000:8.2f} ms   n={len(values)}"
    )


def ratios(ours: Sequence[float], bare: Sequence[float]) -> tuple[float, float]:
    """Ours over bare at p50 and at p99."""
    return (
        percentile(ours, 0.5) / percentile(bare, 0.5),
        percentile(ours, 0.99) / percentile(bare, 0.99),
    )


def ratio_line(ours: Sequence[float], bare: Sequence[float], target: float) -> str:
    """The p50 and p99 ratios of ours to bare, and whether p99 is within `target`."""
    ratio50, ratio99 = ratios(ours, bare)
    verdict = "within" if ratio99 <= target else "OUTSIDE"
    return (
        f"  {'ratio ours/bare':<26} p50 {ratio50:.2f}x   p99 {ratio99:.2f}x "
        f"({verdict} the {target:g}x target)"
    )


def spread_line(label: str, figures: Sequence[float], unit: str = "ms") -> str:
    """`label  min–max` of one figure over several runs (each run's value listed too)."""
    each = ", ".join(f"{figure:.2f}" for figure in figures)
    return f"  {label:<34} {min(figures):8.2f}–{max(figures):.2f} {unit}   ({each})"
