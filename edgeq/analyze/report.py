"""Rendering a per-layer analysis: terminal table, and a self-contained HTML page with plots.

The HTML embeds its PNGs as data URIs (one file to mail or attach to a CI run); the same PNGs
are also written beside it. Rendering is pure: it returns text/bytes, and only
:func:`write_report` touches the disk, atomically.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.analyze.layers import Analysis, LayerStats


def _fmt_db(v: float) -> str:
    return f"{v:6.1f}" if math.isfinite(v) else ("   inf" if v > 0 else "  -inf")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def format_table(a: Analysis) -> str:
    """The terminal view: one row per op, then model-level figures and the 6.02·b line."""
    head = (f"{'#':>3} {'op':<18} {'SQNR dB':>7} {'own dB':>7} {'scale':>10} {'zp':>5} "
            f"{'range used':>19} {'observed':>19} {'clipped':>8} {'w spread':>8}")
    lines = [head, "-" * len(head)]
    from edgeq.analyze.layers import blame

    worst = {id(s) for s in blame(a, 1)}
    for s in a.layers:
        used = f"[{s.range_used[0]:.3g}, {s.range_used[1]:.3g}]"
        obs = f"[{s.range_observed[0]:.3g}, {s.range_observed[1]:.3g}]"
        spread = "-" if s.weight_spread is None else f"{s.weight_spread:.1f}x"
        mark = " <- adds most error" if id(s) in worst else ""
        lines.append(f"{s.op_index:>3} {s.op[:18]:<18} {_fmt_db(s.sqnr_db):>7} "
                     f"{_fmt_db(s.own_sqnr_db):>7} {s.scale:>10.4g} "
                     f"{s.zero_point:>5} {used:>19} {obs:>19} {_pct(s.clipped_fraction):>8} "
                     f"{spread:>8}{mark}")
    m = a.model
    lines.append("")
    lines.append(f"samples {m.samples}: accuracy float {_pct(m.float_accuracy)} / int8 "
                 f"{_pct(m.int8_accuracy)}, top-1 agreement {_pct(m.top1_agreement)}, "
                 f"softmax KL {'-' if m.kl_softmax is None else f'{m.kl_softmax:.4g}'}, "
                 f"output SQNR {_fmt_db(m.output_sqnr_db).strip()} dB")
    lines.append("6.02·b check: " + ", ".join(
        f"{int(r['bits'])}-bit {r['sqnr_db']:.2f} dB (theory {r['theory_db']:.2f})" for r in a.sanity))
    if a.suggestions:
        lines.append("")
        lines.extend(f"suggest: {t}" for t in a.suggestions)
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------------------


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_sqnr(a: Analysis, worst: int = 3) -> bytes:
    """Bar per layer; the ``worst`` lowest-SQNR layers in red."""
    plt = _pyplot()
    vals = [s.sqnr_db if math.isfinite(s.sqnr_db) else np.nan for s in a.layers]
    finite = [v for v in vals if not np.isnan(v)]
    top = (max(finite) if finite else 1.0) + 5.0
    vals = [top if np.isnan(v) else v for v in vals]
    bad = {id(s) for s in a.worst(worst)}
    colors = ["#d62728" if id(s) in bad else "#1f77b4" for s in a.layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(a.layers)), 3.5))
    ax.bar(range(len(vals)), vals, color=colors)
    ax.set_xticks(range(len(vals)))
    ax.set_xticklabels([f"{s.op_index}:{s.op}" for s in a.layers], rotation=60, ha="right",
                       fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("Per-layer output SQNR (red: worst)")
    return _figure_png(fig)


def plot_histogram(s: LayerStats, values: np.ndarray) -> bytes:
    """Float activation histogram (log counts) with the int8 range's clip thresholds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 2.6))
    if values.size:
        lo = min(float(values.min()), s.range_used[0])
        hi = max(float(values.max()), s.range_used[1])
        ax.hist(values, bins=100, range=(lo, hi if hi > lo else lo + 1), color="#7f7f7f", log=True)
    for x in s.range_used:
        ax.axvline(x, color="#d62728", linestyle="--", linewidth=1)
    ax.set_title(f"{s.op_index}:{s.op} — clip [{s.range_used[0]:.3g}, {s.range_used[1]:.3g}]",
                 fontsize=8)
    return _figure_png(fig)


def plot_weight_ranges(s: LayerStats) -> bytes:
    """Per-output-channel max |w|: a wide spread is the danger sign for per-tensor scales."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.bar(range(len(s.weight_channel_absmax)), s.weight_channel_absmax, color="#2ca02c")
    ax.set_xlabel("output channel")
    ax.set_ylabel("max |w|")
    spread = "-" if s.weight_spread is None else f"{s.weight_spread:.1f}x"
    ax.set_title(f"{s.op_index}:{s.op} weights per channel (spread {spread})", fontsize=8)
    return _figure_png(fig)


def render_images(a: Analysis) -> dict[str, bytes]:
    """File name -> PNG bytes, in a stable order."""
    images: dict[str, bytes] = {"sqnr.png": plot_sqnr(a)}
    for s in a.layers:
        images[f"hist_{s.op_index:03d}.png"] = plot_histogram(
            s, a.histograms.get(s.tensor, np.zeros(0))
        )
        if s.weight_channel_absmax:
            images[f"weights_{s.op_index:03d}.png"] = plot_weight_ranges(s)
    return images


def render_html(a: Analysis, images: dict[str, bytes], title: str = "edgeq analysis") -> str:
    def img(name: str) -> str:
        data = base64.b64encode(images[name]).decode("ascii")
        return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'

    rows = []
    for s in a.layers:
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                s.op_index, s.op, s.tensor, _fmt_db(s.sqnr_db).strip(), f"{s.scale:.4g}",
                s.zero_point, f"[{s.range_used[0]:.4g}, {s.range_used[1]:.4g}]",
                f"[{s.range_observed[0]:.4g}, {s.range_observed[1]:.4g}]",
                _pct(s.clipped_fraction),
                "-" if s.weight_spread is None else f"{s.weight_spread:.1f}x",
            )) + "</tr>"
        )
    m = a.model
    hist_imgs = "".join(img(n) for n in images if n.startswith("hist_"))
    w_imgs = "".join(img(n) for n in images if n.startswith("weights_"))
    sugg = "".join(f"<li>{html.escape(t)}</li>" for t in a.suggestions)
    sanity = "".join(
        f"<li>{int(r['bits'])}-bit: {r['sqnr_db']:.2f} dB (theory {r['theory_db']:.2f} dB)</li>"
        for r in a.sanity
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}img{{margin:4px;max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Model</h2><ul>
<li>samples: {m.samples}</li>
<li>accuracy float / int8: {_pct(m.float_accuracy)} / {_pct(m.int8_accuracy)}</li>
<li>top-1 agreement: {_pct(m.top1_agreement)}</li>
<li>softmax KL (float‖int8, mean): {'-' if m.kl_softmax is None else f'{m.kl_softmax:.4g}'}</li>
<li>output SQNR: {_fmt_db(m.output_sqnr_db).strip()} dB</li></ul>
<h2>Suggestions</h2><ul>{sugg or '<li>none requested</li>'}</ul>
<h2>Per-layer SQNR</h2>{img('sqnr.png')}
<table><tr><th>#</th><th>op</th><th>tensor</th><th>SQNR dB</th><th>scale</th><th>zp</th>
<th>range used</th><th>observed</th><th>clipped</th><th>weight spread</th></tr>
{''.join(rows)}</table>
<h2>Activation histograms with clip thresholds</h2>{hist_imgs}
<h2>Per-channel weight ranges</h2>{w_imgs or '<p>no weighted layers</p>'}
<h2>6.02·b sanity check</h2><ul>{sanity}</ul>
</body></html>
"""


def write_report(a: Analysis, out_dir: str | Path, title: str = "edgeq analysis") -> Path:
    """Write ``report.html`` (images embedded), the PNGs and ``analysis.json`` into ``out_dir``."""
    from edgeq.fileio import atomic_output_dir, atomic_write_json

    images = render_images(a)
    page = render_html(a, images, title)
    with atomic_output_dir(out_dir) as tmp:
        for name, data in images.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        atomic_write_json(tmp / "analysis.json", a.as_dict())
    return Path(out_dir) / "report.html"
