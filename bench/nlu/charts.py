"""Charts of the results: scores per language, and the confusion matrix of one split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.nlu.paths import CHART, CONFUSION_CHART
from bench.nlu.report import LABELS, METRICS
from bench.nlu.scoring import LANGUAGES


def chart(results: dict[str, Any], path: Path = CHART) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["pipelines"])
    splits = [s for s in ("frozen", "old") if s in results["pipelines"][names[0]]["splits"]]
    scopes = (*LANGUAGES, "all")
    fig, axes = plt.subplots(
        len(splits), len(METRICS), figsize=(4 * len(METRICS), 3.6 * len(splits)), squeeze=False
    )
    width = 0.8 / len(names)
    for row, split in enumerate(splits):
        for ax, (metric, title) in zip(axes[row], METRICS, strict=True):
            top = 0.0
            for i, name in enumerate(names):
                scores = results["pipelines"][name]["splits"][split]["scores"]
                values = [100 * (scores[s].get(metric) or 0.0) for s in scopes]
                positions = [x + i * width for x in range(len(scopes))]
                label = LABELS.get(name, name) if (row, ax) == (0, axes[0][0]) else None
                ax.bar(positions, values, width, label=label)
                top = max(top, *values)
            ax.set_title(f"{title} % ({split})", fontsize=10)
            ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(scopes))], scopes)
            # Fallback rates are a few percent: on a 0-100 axis they would not show.
            ax.set_ylim(0, 100 if "fallback" not in metric else max(5.0, 1.25 * top))
            ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="upper center", ncol=len(names), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def confusion_chart(summary: dict[str, Any], title: str, path: Path = CONFUSION_CHART) -> None:
    """Row-normalised confusion matrix (gold intent → predicted intent) of one split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    gold = sorted({g for g, _, _ in summary["confusion"]})
    predicted = gold + sorted({p for _, p, _ in summary["confusion"]} - set(gold))
    counts = np.zeros((len(gold), len(predicted)))
    for g, p, n in summary["confusion"]:
        counts[gold.index(g), predicted.index(p)] = n
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(0.45 * len(predicted) + 3, 0.4 * len(gold) + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(predicted)), predicted, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(gold)), gold, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("intent")
    for i in range(len(gold)):
        for j in range(len(predicted)):
            if counts[i, j]:
                colour = "white" if shares[i, j] > 0.6 else "black"
                ax.text(
                    j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=6, color=colour
                )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
