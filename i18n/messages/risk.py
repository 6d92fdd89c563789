"""The risk score as officers read it: bands and reason codes, never shown to a borrower.

One reason per feature of :data:`api.risk.features.FEATURES`; ``{bin}`` is the bin the loan
fell in (``1-7``, ``91+``), as printed on the scorecard.
"""

from i18n.messages import N_

MESSAGES = {
    "risk.band.high": N_("high risk"),
    "risk.band.medium": N_("medium risk"),
    "risk.band.low": N_("low risk"),
    "risk.points": N_("{points} points"),
    "risk.unscored": N_("not scored"),
    "risk.reason.days_past_due": N_("days past due: {bin}"),
    "risk.reason.late_installments": N_("installments paid late: {bin}"),
    "risk.reason.partial_payments": N_("partial payments: {bin}"),
    "risk.reason.broken_promises": N_("broken promises to pay: {bin}"),
    "risk.reason.unanswered_reminders": N_("reminders left unanswered: {bin}"),
    "risk.reason.hardship_cases": N_("hardship requests: {bin}"),
    "risk.reason.loan_cycle": N_("loan cycle: {bin}"),
}
