"""The same pictures drawn in text, for a quick look in a terminal: training curves (plotext) and one
sentence's attention (shade characters)."""

from __future__ import annotations

from seqkit.decoding.inference import AttentionMap
from seqkit.viz.curves import RunCurves, panel_titles

SHADES = " ·░▒▓█"  # weight 0 to 1 in equal steps
# Without colour, series in one panel differ by their marker: braille lines first, then plain characters.
PLAIN_MARKERS = ("braille", "•", "x", "+", "o", "*")


def curves_text(runs: list[RunCurves], x: str = "step", width: int = 100, colour: bool = True) -> str:
    """Every panel as a text chart, one under the other (the same panels and series as plots.curves_figure)."""
    import plotext

    charts = []
    for title in panel_titles(runs):
        plotext.clear_figure()
        plotext.plotsize(width, 18)
        plotext.theme("clear" if not colour else "pro")
        series = 0
        for run in runs:
            for panel in run.panels:
                if panel.title != title:
                    continue
                for curve in panel.curves:
                    xs = curve.steps if x == "step" else curve.minutes
                    label = curve.label if len(runs) == 1 else f"{run.name}: {curve.label}"
                    marker = "braille" if colour else PLAIN_MARKERS[series % len(PLAIN_MARKERS)]
                    plotext.plot(xs, curve.values, label=label, marker=marker)
                    series += 1
                if panel.log_scale:
                    plotext.yscale("log")
        plotext.title(title)
        plotext.xlabel("step" if x == "step" else "training time (minutes)")
        chart = plotext.build()
        charts.append(chart if colour else plotext.uncolorize(chart))
    return "\n".join(charts)


def shade(weight: float) -> str:
    return SHADES[min(len(SHADES) - 1, int(weight * (len(SHADES) - 1) + 0.5))]


def attention_text(attention: AttentionMap) -> str:
    """Output pieces down, source positions across (numbered, the pieces listed above), one shade per
    weight; after each row, the source piece it attends to most (its position: a piece can occur twice)
    and that weight."""
    lines = ["source: " + "  ".join(f"{j + 1}:{piece}" for j, piece in enumerate(attention.source))]
    width = max(len(piece) for piece in attention.output) if attention.output else 0
    header = "".join(f"{(j + 1) % 10:>2}" for j in range(len(attention.source)))
    lines.append(f"{'':<{width}} {header}")
    gates: list[float | None] = [None] * len(attention.output)
    if attention.generate is not None:
        gates = list(attention.generate)
    for piece, row, gate in zip(attention.output, attention.weights, gates, strict=True):
        cells = "".join(f" {shade(w)}" for w in row)
        best = max(range(len(row)), key=row.__getitem__)
        generated = f"; generate {gate:.2f}" if gate is not None else ""  # a copy model's gate
        lines.append(
            f"{piece:<{width}} {cells}   -> {best + 1}:{attention.source[best]} ({row[best]:.2f}{generated})"
        )
    return "\n".join(lines)


def classification_text(inspection) -> str:
    """A classifier's answer on one input: the likeliest labels, and (attention pooling) each step's
    weight in the pooled vector, shaded."""
    lines = [f"output: {inspection.output}"]
    if inspection.probabilities:
        ranked = sorted(inspection.probabilities.items(), key=lambda item: -item[1])[:5]
        lines.append("labels: " + "  ".join(f"{label} {p:.3f}" for label, p in ranked))
    if inspection.pooling is not None:
        lines.append("pooling weights:")
        tokens = inspection.layers[0].tokens
        largest = max(inspection.pooling, default=1.0) or 1.0
        for token, weight in zip(tokens, inspection.pooling, strict=True):
            lines.append(f"  {shade(weight / largest)} {weight:.3f} {token}")
    return "\n".join(lines)
