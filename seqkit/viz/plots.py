"""PNG pictures: training curves, attention heatmaps, hidden states, gates and state trajectories.

Every `*_figure` function takes the data it draws (curves.py, decoding/inference.py, model_types/inspection.py) and
returns a matplotlib Figure; `png` turns it into bytes, which the caller writes atomically. Figures have
a fixed size in inches at DPI dots per inch (no tight cropping), so a picture's pixel size follows from
its contents' counts alone. Figures are made without pyplot: no backend is chosen, no display is needed
and nothing is left open in a global figure list (matplotlib renders PNG with Agg itself).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from seqkit.decoding.inference import AttentionMap

if TYPE_CHECKING:  # these import torch (curves through the training log): an export's
    # `translate --attention` draws without it
    import torch

    from seqkit.model_types.inspection import Inspection
    from seqkit.viz.curves import RunCurves

DPI = 100
CURVES_PANEL_SIZE = (6.0, 3.6)  # inches per panel; two panels a row
RUN_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")
MAX_LABELS = 60  # tick labels per axis; longer sequences label every n-th step


def _figure(size: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=size)


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def curves_size(panels: int) -> tuple[float, float]:
    """Figure size in inches for `panels` panels, two per row."""
    rows = (panels + 1) // 2
    return (CURVES_PANEL_SIZE[0] * min(2, panels), CURVES_PANEL_SIZE[1] * rows)


def curves_figure(runs: list[RunCurves], x: str = "step"):
    """One matplotlib figure, a panel per quantity; each run has its colour, train lines plain, dev
    lines with a dot per validation (a panel's second series dashed). x: "step" or "time" (minutes)."""
    from seqkit.viz.curves import panel_titles

    titles = panel_titles(runs)
    columns = min(2, len(titles))
    rows = (len(titles) + 1) // 2
    figure = _figure(curves_size(len(titles)))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[len(titles) :]:
        ax.set_visible(False)
    for ax, title in zip(axes.flat, titles, strict=False):
        for index, run in enumerate(runs):
            colour = RUN_COLOURS[index % len(RUN_COLOURS)]
            for panel in run.panels:
                if panel.title != title:
                    continue
                for number, curve in enumerate(panel.curves):
                    xs = curve.steps if x == "step" else curve.minutes
                    dev = curve.label not in ("train",)
                    label = curve.label if len(runs) == 1 else f"{run.name}: {curve.label}"
                    style = ("--" if number else "-") if dev else "-"
                    ax.plot(
                        xs,
                        curve.values,
                        style,
                        color=colour,
                        # (a line of one point draws nothing: a run's first logged step alone)
                        marker="o" if dev or len(xs) == 1 else None,
                        markersize=3,
                        label=label,
                        alpha=1.0 if number == 0 else 0.7,
                    )
                if panel.log_scale:
                    ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step" if x == "step" else "training time (minutes)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    figure.tight_layout()
    return figure


def _label_ticks(ax, axis: str, labels: list[str]) -> None:
    every = max(1, -(-len(labels) // MAX_LABELS))
    positions = list(range(0, len(labels), every))
    shown = [labels[i] for i in positions]
    if axis == "x":
        ax.set_xticks(positions, shown, rotation=90, fontsize="small")
    else:
        ax.set_yticks(positions, shown, fontsize="small")


def attention_size(source: int, output: int) -> tuple[float, float]:
    """Figure size in inches for an attention map of `source` x `output` pieces."""
    return (min(40.0, 2.5 + 0.28 * source), min(40.0, 2.0 + 0.28 * output))


def _label_font(count: int, inches: float) -> float:
    """A tick-label font size (points) that fits `count` labels along `inches`, at most 8 points."""
    return max(2.0, min(8.0, 0.75 * 72 * inches / max(1, count)))


def attention_figure(attention: AttentionMap, title: str = ""):
    """Heatmap: source pieces across, output pieces down, every one labelled; the colour runs from white
    at 0 to dark at the largest weight in the map (a weak model's weights never near 1 would otherwise
    draw an almost white picture), and the colour bar says so."""
    width, height = attention_size(len(attention.source), len(attention.output))
    figure = _figure((width, height))
    ax = figure.subplots()
    largest = max((w for row in attention.weights for w in row), default=0.0)
    vmax = max(largest, 1e-6)
    image = ax.imshow(attention.weights, cmap="Greys", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(
        range(len(attention.source)),
        attention.source,
        rotation=90,
        fontsize=_label_font(len(attention.source), width - 2.5),
    )
    outputs = attention.output
    if attention.generate is not None:  # a copy model: its gate beside each output piece
        outputs = [f"{piece} ({gate:.2f})" for piece, gate in zip(outputs, attention.generate, strict=True)]
    ax.set_yticks(range(len(outputs)), outputs, fontsize=_label_font(len(outputs), height - 2.0))
    ax.set_xlabel("source piece")
    gate = (
        "; in brackets, the copy gate's probability of generating" if attention.generate is not None else ""
    )
    ax.set_ylabel(f"output piece (in the order produced{gate})")
    heading = "attention: where each output piece looked in the source (each row sums to 1)"
    ax.set_title(f"{title}: {heading}" if title else heading, fontsize="small")
    bar = figure.colorbar(image, ax=ax, fraction=0.04)
    bar.set_label(f"attention weight (0 to the largest here, {largest:.3f})", fontsize="small")
    figure.tight_layout()
    return figure


def _trace_grid(rows: int, columns: int, steps: int):
    width = min(40.0, 3.0 + columns * max(4.0, 0.22 * steps))
    figure = _figure((width, 2.8 * rows))
    return figure, figure.subplots(rows, columns, squeeze=False)


def hidden_states_figure(inspection: Inspection):
    """A heatmap of hidden units (down) over time steps (across) for every layer and direction."""
    steps = max(len(layer.tokens) for layer in inspection.layers)
    figure, axes = _trace_grid(len(inspection.layers), 1, steps)
    for ax, layer in zip(axes[:, 0], inspection.layers, strict=True):
        image = ax.imshow(layer.hidden.T.float().numpy(), cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
        ax.set_title(f"{layer.name}: hidden state ({layer.hidden.size(1)} units)", fontsize="small")
        _label_ticks(ax, "x", layer.tokens)
        ax.set_ylabel("unit")
        figure.colorbar(image, ax=ax, fraction=0.03)
    figure.tight_layout()
    return figure


def gates_figure(inspection: Inspection):
    """For each layer, each gate's activation (0 to 1) per unit over time; a GRU has update and reset,
    an LSTM input, forget and output gates."""
    names = list(inspection.layers[0].gates)
    if not names:
        raise ValueError(f"a {inspection.cell} cell has no gates")
    steps = max(len(layer.tokens) for layer in inspection.layers)
    figure, axes = _trace_grid(len(inspection.layers), len(names), steps)
    for row, layer in zip(axes, inspection.layers, strict=True):
        for ax, name in zip(row, names, strict=True):
            image = ax.imshow(
                layer.gates[name].T.float().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto"
            )
            mean = float(layer.gates[name].mean())
            ax.set_title(f"{layer.name}: {name} gate (mean {mean:.2f})", fontsize="small")
            _label_ticks(ax, "x", layer.tokens)
            figure.colorbar(image, ax=ax, fraction=0.04)
    figure.tight_layout()
    return figure


def trajectory_figure(inspection: Inspection):
    """The first two principal components of each layer's hidden state, step by step, tokens labelled."""
    layers = inspection.layers
    columns = min(3, len(layers))
    rows = -(-len(layers) // columns)
    figure = _figure((5.0 * columns, 4.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[len(layers) :]:
        ax.set_visible(False)
    for ax, layer in zip(axes.flat, layers, strict=False):
        points, shares = principal_components(layer.hidden)
        xs, ys = points[:, 0].tolist(), points[:, 1].tolist()
        ax.plot(xs, ys, "-", color="0.6", linewidth=1)
        dots = ax.scatter(xs, ys, c=range(len(xs)), cmap="viridis", s=18, zorder=3)
        for index in _spread_labels(xs, ys):
            ax.annotate(layer.tokens[index], (xs[index], ys[index]), fontsize=7, xytext=(2, 2),
                        textcoords="offset points")  # fmt: skip
        ax.set_title(f"{layer.name}: hidden state, first two principal components", fontsize="small")
        ax.set_xlabel(f"PC1 ({shares[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({shares[1]:.0%})")
        bar = figure.colorbar(dots, ax=ax, fraction=0.05)
        bar.set_label("step (time: dark first, light last)", fontsize="small")
    figure.tight_layout()
    return figure


# a label is left out when it would start within this share of the axes' width and height of one shown
# (labels run to the right: a short piece in 7 points takes about a tenth of a panel's width)
LABEL_SPACING = (0.12, 0.05)


def _spread_labels(xs: list[float], ys: list[float]) -> list[int]:
    """The points to label, in step order: each clear of every label already placed (LABEL_SPACING), so
    that a trajectory that circles one spot shows its first visit only."""
    if not xs:
        return []
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    placed: list[int] = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        apart_x, apart_y = LABEL_SPACING
        if all(abs(x - xs[j]) / span_x > apart_x or abs(y - ys[j]) / span_y > apart_y for j in placed):
            placed.append(i)
    return placed


def principal_components(hidden: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """hidden (steps, units) -> its first two principal components (steps, 2) and the share of the
    variance each explains. Fewer than two steps, or no variance, give zeros."""
    import torch

    centred = hidden.double() - hidden.double().mean(0)
    if hidden.size(0) < 2 or float(centred.abs().max()) == 0.0:
        return torch.zeros(hidden.size(0), 2), [0.0, 0.0]
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    components = centred @ right[:2].T  # (steps, <= 2)
    variance = singular.square()
    shares = (variance[:2] / variance.sum()).tolist()
    if components.size(1) < 2:  # one step of variance only
        components = torch.cat([components, components.new_zeros(components.size(0), 1)], dim=1)
        shares.append(0.0)
    return components.float(), shares


def confusion_figure(matrix, labels: list[str], title: str = ""):
    """The confusion matrix: true labels down, predicted across, each cell's count written in it and
    shaded by its share of its row (so a small label's errors show as clearly as a large one's)."""
    import numpy as np

    count = len(labels)
    size = min(30.0, 3.0 + 0.6 * count)
    figure = _figure((size + 1.0, size))
    ax = figure.subplots()
    rows = matrix.sum(1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    font = _label_font(count, size - 3.0)
    ax.set_xticks(range(count), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(count), labels, fontsize=font)
    for i in range(count):
        for j in range(count):
            if matrix[i, j]:
                colour = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=font, color=colour)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    heading = f"confusion matrix ({int(matrix.sum()):,} examples, accuracy {accuracy:.3f})"
    ax.set_title(f"{title}: {heading}" if title else heading, fontsize="small")
    bar = figure.colorbar(image, ax=ax, fraction=0.04)
    bar.set_label("share of the true label's examples", fontsize="small")
    figure.tight_layout()
    return figure


def forecast_figure(actual, predicted, title: str = ""):
    """A forecaster's test windows in time order: the actual value and the prediction at the first step
    ahead (left), and predicted against actual for every step ahead, with the diagonal (right)."""
    figure = _figure((12.0, 4.0))
    series, scatter = figure.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    series.plot(actual[:, 0], label="actual", color="black", linewidth=1.0)
    series.plot(predicted[:, 0], label="predicted", color="tab:orange", linewidth=1.0)
    series.set_xlabel("test window (in time order)")
    series.set_ylabel("value, one step ahead")
    series.legend(fontsize="small")
    scatter.scatter(actual.ravel(), predicted.ravel(), s=6, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    scatter.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
    scatter.set_xlabel("actual")
    scatter.set_ylabel("predicted")
    heading = "predicted against actual"
    series.set_title(f"{title}: {heading}" if title else heading, fontsize="small")
    figure.tight_layout()
    return figure


def pooling_figure(inspection: Inspection):
    """A classifier's attention pooling: the weight of each step in the vector its head reads."""
    weights = inspection.pooling or []
    tokens = inspection.layers[0].tokens
    width = min(40.0, 3.0 + 0.3 * len(tokens))
    figure = _figure((width, 3.5))
    ax = figure.subplots()
    ax.bar(range(len(weights)), weights, color="tab:blue")
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=_label_font(len(tokens), width - 3.0))
    ax.set_ylabel("pooling weight")
    ax.set_title(f"attention pooling (weights sum to 1): {inspection.output}", fontsize="small")
    figure.tight_layout()
    return figure
