"""Risk scorecard on a time split of the synthetic portfolio, against days past due alone.

``python -m bench.risk`` seeds a synthetic portfolio (SQLite, in a temporary folder) as of a
fixed day, takes every month-end snapshot whose outcome the data can tell
(:func:`api.risk.service.snapshots`), fits on the first months and tests on the later ones:
the full scorecard, and a baseline scorecard on days past due only. It prints AUC, KS,
the Brier score and reliability by deciles for both, draws the calibration plot
``bench/risk.png`` and rewrites the "Risk" section of bench/README.md, keeping its table of
earlier runs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import matplotlib
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.risk.features import FEATURES
from api.risk.fit import Evaluation, evaluate, fit_scorecard
from api.risk.scorecard import Scorecard
from api.risk.service import Snapshot, load_histories, month_ends, snapshots, time_split
from bench.readme import README, replace_section
from portfolio.synthetic.seed import seed_portfolio

TODAY = date(2026, 11, 30)
CHART = Path(__file__).resolve().parent / "risk.png"
BASELINE = ("days_past_due",)

GENERATOR = "discipline + shocks (issue 17)"
# The run of the first generator (one fixed profile per loan), before this file kept a history.
FIRST_RUN = (
    "| 2026-12-06 18:38 | profiles (before issue 17) | 4000 | 17 | 0.700 | 0.683 | 0.375 "
    "| 0.352 | - | - | 0.256 | 0.141 |"
)
HISTORY_HEADING = "### Earlier runs"
HISTORY_COLUMNS = (
    "| run (UTC) | generator | borrowers | seed | AUC card | AUC DPD | KS card | KS DPD "
    "| Brier card | Brier DPD | max gap card | max gap DPD |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)

# What these figures can and cannot say, given how portfolio/synthetic/repayment.py draws.
HONESTY = """\
**These figures measure how well the scorecard recovers structure planted in a synthetic
portfolio, not how it would do on a real one.** The generator (`portfolio/synthetic/repayment.py`)
gives each borrower a latent repayment discipline (a normal draw on the log-odds scale of
missing an installment, lowered by 0.25 per loan cycle); a loan may be struck by a shock,
likelier for risky borrowers, that multiplies the odds of missing by about 9 for a few
installments and sometimes opens a hardship case (resolved weeks later); arrears already owed
raise the odds again, and better-disciplined borrowers catch up sooner. Each installment is paid
on time, late, partly or not at all from those odds; one unpaid at the end of its due day brings
a reminder the next day (in the contact ledger), which risky or shocked borrowers more often
leave unanswered, and a miss often brings a promise, which they more often break. Repeat
borrowers' earlier loans are in the book, so the history runs back more than a year and a half
before the seed day. Every feature of the card therefore carries some of the trait, none is the
trait itself, and the figures say how much of it a binned logistic regression finds from
month-end snapshots against days past due alone. A bin's points are net of the other
features: partial payments, drawn only with a miss, overlap late installments and days past
due, so the card may give them few points or even reverse them. The outcome, the features and
the fit are the ones `kopa risk fit` uses on a real portfolio; only there would the figures say
how well Kopa predicts real borrowers. Days past due earn fewer points past 30 days by the
outcome's own definition (a loan 90+ days late cannot roll to a worse bucket), so officers
should read the score beside the bucket, not instead of it.
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


def _chart(results: dict[str, Evaluation]) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4))
    for name, result in results.items():
        axis.plot(
            [b.predicted for b in result.calibration],
            [b.observed for b in result.calibration],
            marker="o",
            label=f"{name} (AUC {result.auc:.3f}, Brier {result.brier:.3f})",
        )
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    axis.set(
        xlabel="predicted probability (decile mean, each model's own deciles)",
        ylabel="observed share went wrong",
    )
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
    train, test = time_split(taken)
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
        "cards": cards,
        "results": results,
        "support": _support(taken),
        "seconds": time.perf_counter() - started,
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }


def _results_table(outcome: dict[str, object]) -> Table:
    results: dict[str, Evaluation] = outcome["results"]  # type: ignore[assignment]
    table = Table(title="Risk on the test months (fit on the earlier ones)")
    columns = ("model", "AUC", "KS", "Brier", "max decile gap", "test snapshots", "went wrong")
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r.auc:.3f}",
            f"{r.ks:.3f}",
            f"{r.brier:.3f}",
            f"{r.calibration_gap:.3f}",
            str(r.snapshots),
            str(r.events),
        )
    return table


def _history_row(outcome: dict[str, object], borrowers: int, seed: int) -> str:
    results: dict[str, Evaluation] = outcome["results"]  # type: ignore[assignment]
    card, dpd = results["scorecard"], results["days past due only"]
    figures = (
        (card.auc, dpd.auc),
        (card.ks, dpd.ks),
        (card.brier, dpd.brier),
        (card.calibration_gap, dpd.calibration_gap),
    )
    cells = " | ".join(f"{a:.3f} | {b:.3f}" for a, b in figures)
    return f"| {outcome['at']} | {GENERATOR} | {borrowers} | {seed} | {cells} |"


def _earlier_rows(readme: Path = README) -> list[str]:
    """The history rows of the Risk section now in the README (the first run's if none)."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    section = re.search(r"^## Risk\n.*?(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    history = section.group(0).split(HISTORY_HEADING, 1) if section else []
    rows = (
        re.findall(r"^\| \d{4}-\d\d-\d\d .*\|$", history[1], re.MULTILINE)
        if len(history) == 2
        else []
    )
    return rows or [FIRST_RUN]


def _markdown(outcome: dict[str, object], borrowers: int, seed: int, earlier: list[str]) -> str:
    train: list[Snapshot] = outcome["train"]  # type: ignore[assignment]
    test: list[Snapshot] = outcome["test"]  # type: ignore[assignment]
    results: dict[str, Evaluation] = outcome["results"]  # type: ignore[assignment]
    cards: dict[str, Scorecard] = outcome["cards"]  # type: ignore[assignment]
    support: dict[str, float] = outcome["support"]  # type: ignore[assignment]
    months = sorted({s.day for s in train}), sorted({s.day for s in test})
    lines = [
        "## Risk",
        "",
        f"`python -m bench.risk` on {_machine()}, {outcome['at']} UTC: synthetic portfolio of "
        f"{borrowers} borrowers (seed {seed}) as of {TODAY}; month-end snapshots of every open "
        "loan whose outcome the data can tell (next installment unpaid 3 days after its due "
        "day, or a worse roll-rate bucket 30 days later). Fit on "
        f"{months[0][0]}..{months[0][-1]} ({len(train)} snapshots, "
        f"{sum(s.went_wrong for s in train)} went wrong), test on "
        f"{months[1][0]}..{months[1][-1]} ({len(test)} snapshots, "
        f"{sum(s.went_wrong for s in test)} went wrong). Features and snapshots took "
        f"{outcome['seconds']:.1f} s.",
        "",
        "| model | AUC | KS | Brier score | max decile calibration gap |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r.auc:.3f} | {r.ks:.3f} | {r.brier:.4f} | {r.calibration_gap:.3f} |"
        )
    names = list(results)
    lines += [
        "",
        "Reliability on the test months: each model's test snapshots in deciles of its own "
        "probability, the mean predicted probability against the share that went wrong:",
        "",
        "| decile | " + " | ".join(f"{n}: predicted | {n}: observed" for n in names) + " |",
        "| ---: | " + " | ".join("---: | ---:" for _ in names) + " |",
    ]
    for k, bins in enumerate(zip(*(results[n].calibration for n in names), strict=True), 1):
        cells = " | ".join(f"{b.predicted:.3f} | {b.observed:.3f}" for b in bins)
        lines.append(f"| {k} | {cells} |")
    lines += [
        "",
        "Days past due alone take few values, so most of its deciles share one probability.",
        "",
        "![calibration plot: predicted against observed by decile](risk.png)",
        "",
        "The fitted card (points per bin):",
        "",
    ]
    lines += ["| feature | bin | points |", "| --- | --- | ---: |"]
    lines += [f"| {f} | {b} | {p} |" for f, b, p in cards["scorecard"].table()]
    lines += ["", "Share of snapshots where each feature is off its first bin:", ""]
    lines.append(", ".join(f"{name} {share:.1%}" for name, share in support.items()) + ".")
    lines += [
        "",
        HONESTY,
        HISTORY_HEADING,
        "",
        "Newest first, this run included (card: the scorecard, DPD: days past due only).",
    ]
    lines += ["", HISTORY_COLUMNS, _history_row(outcome, borrowers, seed), *earlier]
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
        earlier = _earlier_rows()
        replace_section("Risk", _markdown(outcome, args.borrowers, args.seed, earlier))


if __name__ == "__main__":
    main()
