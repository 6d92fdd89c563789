"""Risk scorecard on a time split of the synthetic portfolio, against days past due alone.

``python -m bench.risk`` seeds a synthetic portfolio (SQLite, in a temporary folder) as of a
fixed day, takes every month-end snapshot whose outcome the data can tell
(:func:`api.risk.service.snapshots`), fits on the first months and tests on the later ones:
the full scorecard, and a baseline scorecard on days past due only. It prints AUC, KS and
calibration by deciles, draws ``bench/risk.png`` and rewrites the "Risk" section of
bench/README.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import matplotlib
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.risk.features import FEATURES
from api.risk.fit import Evaluation, evaluate, fit_scorecard
from api.risk.scorecard import Scorecard
from api.risk.service import Snapshot, load_histories, month_ends, snapshots
from bench.readme import replace_section
from portfolio.synthetic import seed_portfolio

TODAY = date(2026, 11, 30)
CHART = Path(__file__).resolve().parent / "risk.png"
BASELINE = ("days_past_due",)

# What these figures can and cannot say, given how portfolio/synthetic.py draws its history.
HONESTY = """\
**These figures come from a synthetic portfolio and say little about a real one.** The
generator draws one fixed profile per loan (on time, late, cured, defaulted, closed) and places
the misses relative to the seed day: a "late" loan's missed installments are always its last
one to three before that day, so the share that went wrong climbs month by month towards the
seed day and the test months have a higher base rate than the fitted ones (hence the
calibration gaps: the lower deciles under-predict the later months, the top one over-predicts).
Days past due earn fewer points after 30 days by the outcome's own definition: a loan already
90+ days late cannot roll to a worse bucket, and one with nothing left to fall due cannot miss
an installment, so officers should read the score beside the bucket, not instead of it. What
signal there is comes from days past due, late installments (the "late" profile pays 30 % of
its installments a few days late before it stops, the on-time one 8 %) and broken promises
(drawn only on loans already in arrears). Three features carry nothing: the seed writes no
contact events (unanswered reminders are always 0), opens hardship cases only in the last three
days (after every month-end whose outcome can be told) and draws partial payments only at the
last miss. Loan cycle barely matters there. For a meaningful evaluation the generator would
need: a per-borrower risk that moves month by month (a chain current -> late -> default with
shocks, so misses fall anywhere in a loan's life), partial payments and promises spread over
that life, reminder and reply events in the ledger whose replies go with payment, hardship
cases dated through the history and followed by more misses, and risk that falls with the
cycle. Then the same command gives figures worth comparing; on a real portfolio, run `kopa risk
fit` and compare the scores against what followed.
"""


def _machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown machine"
    fields = dict(re.findall(r"^([^:]+):\s*(.+)$", out, re.MULTILINE))
    return f"{fields.get('Model name', '?')}, {fields.get('CPU(s)', '?')} CPUs"


def _probabilities(card: Scorecard, taken: Sequence[Snapshot]) -> list[float]:
    return [float(card.score(s.features).probability) for s in taken]


def _split(taken: Sequence[Snapshot]) -> tuple[list[Snapshot], list[Snapshot], date]:
    """Fit on the first two thirds of the month-ends, test on the rest."""
    months = sorted({s.day for s in taken})
    last_fit = months[max(0, len(months) * 2 // 3 - 1)]
    return (
        [s for s in taken if s.day <= last_fit],
        [s for s in taken if s.day > last_fit],
        last_fit,
    )


def _chart(results: dict[str, Evaluation]) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4))
    for name, result in results.items():
        axis.plot(
            [b.predicted for b in result.calibration],
            [b.observed for b in result.calibration],
            marker="o",
            label=f"{name} (AUC {result.auc:.3f})",
        )
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    axis.set(xlabel="predicted probability (decile mean)", ylabel="observed share went wrong")
    axis.set_title("Calibration on the test months", fontsize=10)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)


def _support(taken: Sequence[Snapshot]) -> dict[str, float]:
    """Per feature, the share of snapshots where it is not at its first bin's value."""
    first = {name: 1 if name == "loan_cycle" else 0 for name in FEATURES}
    return {
        name: sum(s.features[name] > first[name] for s in taken) / max(1, len(taken))
        for name in FEATURES
    }


def run(borrowers: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kopa-risk-") as tmp:
        url = f"sqlite:///{tmp}/risk.db"
        seed_portfolio(url, borrowers=borrowers, seed=seed, today=TODAY, pepper="bench-risk")
        engine = build_engine(url)
        started = time.perf_counter()
        with Session(engine) as session:
            histories = load_histories(session)
        first = min(h.disbursed_on for h in histories)
        taken = snapshots(histories, month_ends(first, TODAY), observed_through=TODAY)
        engine.dispose()
    train, test, last_fit = _split(taken)
    cards = {
        "scorecard": fit_scorecard([s.features for s in train], [s.went_wrong for s in train]),
        "days past due only": fit_scorecard(
            [s.features for s in train], [s.went_wrong for s in train], features=BASELINE
        ),
    }
    labels = [s.went_wrong for s in test]
    results = {name: evaluate(_probabilities(card, test), labels) for name, card in cards.items()}
    return {
        "train": train,
        "test": test,
        "last_fit": last_fit,
        "cards": cards,
        "results": results,
        "support": _support(taken),
        "seconds": time.perf_counter() - started,
    }


def _results_table(outcome: dict[str, object]) -> Table:
    results: dict[str, Evaluation] = outcome["results"]  # type: ignore[assignment]
    table = Table(title="Risk on the test months (fit on the earlier ones)")
    for column in ("model", "AUC", "KS", "max decile gap", "test snapshots", "went wrong"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, r in results.items():
        gap = max(abs(b.predicted - b.observed) for b in r.calibration)
        table.add_row(
            name, f"{r.auc:.3f}", f"{r.ks:.3f}", f"{gap:.3f}", str(r.snapshots), str(r.events)
        )
    return table


def _markdown(outcome: dict[str, object], borrowers: int, seed: int) -> str:
    train: list[Snapshot] = outcome["train"]  # type: ignore[assignment]
    test: list[Snapshot] = outcome["test"]  # type: ignore[assignment]
    results: dict[str, Evaluation] = outcome["results"]  # type: ignore[assignment]
    cards: dict[str, Scorecard] = outcome["cards"]  # type: ignore[assignment]
    support: dict[str, float] = outcome["support"]  # type: ignore[assignment]
    months = sorted({s.day for s in train}), sorted({s.day for s in test})
    lines = [
        "## Risk",
        "",
        f"`python -m bench.risk` on {_machine()}: synthetic portfolio of {borrowers} borrowers "
        f"(seed {seed}) as of {TODAY}; month-end snapshots of every open loan whose outcome "
        "the data can tell (next installment unpaid 3 days after its due day, or a worse "
        "roll-rate bucket 30 days later). Fit on "
        f"{months[0][0]}..{months[0][-1]} ({len(train)} snapshots, "
        f"{sum(s.went_wrong for s in train)} went wrong), test on "
        f"{months[1][0]}..{months[1][-1]} ({len(test)} snapshots, "
        f"{sum(s.went_wrong for s in test)} went wrong). Features and snapshots took "
        f"{outcome['seconds']:.1f} s.",
        "",
        "| model | AUC | KS | max decile calibration gap |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        gap = max(abs(b.predicted - b.observed) for b in r.calibration)
        lines.append(f"| {name} | {r.auc:.3f} | {r.ks:.3f} | {gap:.3f} |")
    lines += ["", "Calibration on the test months, by deciles of the scorecard's probability:", ""]
    lines += ["| decile | snapshots | predicted | observed |", "| ---: | ---: | ---: | ---: |"]
    for k, b in enumerate(results["scorecard"].calibration, start=1):
        lines.append(f"| {k} | {b.snapshots} | {b.predicted:.3f} | {b.observed:.3f} |")
    lines += ["", "![calibration](risk.png)", "", "The fitted card (points per bin):", ""]
    lines += ["| feature | bin | points |", "| --- | --- | ---: |"]
    lines += [f"| {f} | {b} | {p} |" for f, b, p in cards["scorecard"].table()]
    lines += ["", "Share of snapshots where each feature is off its first bin:", ""]
    lines.append(", ".join(f"{name} {share:.1%}" for name, share in support.items()) + ".")
    lines += ["", HONESTY]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--borrowers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args(argv)
    outcome = run(args.borrowers, args.seed)
    Console().print(_results_table(outcome))
    _chart(outcome["results"])  # type: ignore[arg-type]
    if not args.no_readme:
        replace_section("Risk", _markdown(outcome, args.borrowers, args.seed))


if __name__ == "__main__":
    main()
