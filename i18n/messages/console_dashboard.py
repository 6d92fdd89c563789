"""The managers' dashboard in the console: the names of the KPIs and what they are made of.

Rates are shown as the reader's percentages; ``{part}`` and ``{whole}`` are the figures a rate
divides (money or counts), already formatted.
"""

from i18n.messages import N_

MESSAGES = {
    "console.nav.queue": N_("Cases"),
    "console.nav.dashboard": N_("Dashboard"),
    "console.dashboard.heading": N_("Branch dashboard"),
    "console.dashboard.intro": N_(
        "Figures at the end of {day}; collection, promises and contact over its month so far. "
        "The charts show the last {months} month-ends."
    ),
    "console.dashboard.indicator": N_("Indicator"),
    "console.dashboard.value": N_("Value"),
    "console.dashboard.basis_heading": N_("Out of"),
    "console.dashboard.basis": N_("{part} of {whole}"),
    "console.dashboard.no_data": N_("no data"),
    "console.dashboard.par1": N_("Portfolio at risk over 1 day ({currency})"),
    "console.dashboard.par30": N_("Portfolio at risk over 30 days ({currency})"),
    "console.dashboard.par90": N_("Portfolio at risk over 90 days ({currency})"),
    "console.dashboard.on_time_rate": N_("Collected on time ({currency})"),
    "console.dashboard.with_arrears_rate": N_("Collected with arrears ({currency})"),
    "console.dashboard.kept_rate": N_("Promises kept"),
    "console.dashboard.promises_basis": N_(
        "{kept} kept, {partially_kept} partly kept, {broken} broken"
    ),
    "console.dashboard.cure_rate": N_("Late loans cured"),
    "console.dashboard.conversion": N_("Reminders followed by a payment within 3 days"),
    "console.dashboard.opt_out": N_("Borrowers reached who opted out"),
    "console.dashboard.complaints": N_("Borrowers reached who complained"),
    "console.dashboard.roll_heading": N_("Roll rates from {start} to {end}"),
    "console.dashboard.repaid": N_("repaid"),
    "console.dashboard.delivery_heading": N_("Messages this month by channel"),
    "console.dashboard.no_messages": N_("No messages this month."),
    "console.dashboard.channel": N_("Channel"),
    "console.dashboard.outcome.sent": N_("sent"),
    "console.dashboard.outcome.failed": N_("failed"),
    "console.dashboard.outcome.dead": N_("given up"),
    "console.dashboard.outcome.unknown": N_("unknown"),
    "console.dashboard.outcome.suppressed": N_("held back"),
    "console.dashboard.receipt.delivered": N_("delivered"),
    "console.dashboard.receipt.read": N_("read"),
    "console.dashboard.receipt.failed": N_("not delivered"),
    "console.dashboard.charts_heading": N_("Month by month"),
    "console.dashboard.chart.par": N_("Portfolio at risk"),
    "console.dashboard.chart.collection": N_("Collection rate"),
    "console.dashboard.chart.behaviour": N_("Promises, cures and reminders"),
    "console.dashboard.chart.contact": N_("Opt-outs and complaints"),
    "console.dashboard.rpc": N_("Messages read or answered within 24 hours"),
    "console.dashboard.rpc_channel": N_("Read or answered within 24 hours ({channel})"),
    "console.dashboard.rpc_phone": N_("Officers' calls answered"),
    "console.dashboard.rpc_all": N_("Read or answered within 24 hours (all channels)"),
    "console.dashboard.chart.reach": N_("Borrowers reached in chat"),
    "console.dashboard.sla_missed": N_("Case deadlines missed"),
    "console.dashboard.sla_heading": N_("Case deadlines this month by officer"),
    "console.dashboard.officer": N_("Officer"),
    "console.dashboard.unassigned": N_("Nobody assigned"),
    "console.dashboard.sla_due": N_("Deadlines"),
    "console.dashboard.sla_breached": N_("Missed"),
    "console.dashboard.sla_still_open": N_("Still not taken"),
    "console.dashboard.sla_rate": N_("Share missed"),
    "console.dashboard.sla_in_time": N_("Taken in time"),
    "console.dashboard.no_deadlines": N_("No case deadline fell this month."),
    "console.dashboard.chart.sla": N_("Case deadlines met and missed, by officer"),
    "console.dashboard.holdout_heading": N_(
        "Do reminders help? Reminded borrowers and the holdout"
    ),
    "console.dashboard.holdout_intro": N_(
        "{share} of borrowers, set aside by a fixed draw, get no reminders around their due dates "
        "(they still get promise reminders, the offer of help and case updates). Installments due "
        "from {start} paid in full by their due date:"
    ),
    "console.dashboard.holdout_off": N_(
        "No holdout is set, so the effect of reminders cannot be measured. An administrator can "
        "set one."
    ),
    "console.dashboard.arm": N_("Group"),
    "console.dashboard.arm.reminded": N_("Reminded"),
    "console.dashboard.arm.holdout": N_("Holdout (no reminders)"),
    "console.dashboard.installments": N_("Installments due"),
    "console.dashboard.on_time": N_("Paid on time"),
    "console.dashboard.rate": N_("Rate"),
    "console.dashboard.interval": N_("{confidence} interval"),
    "console.dashboard.interval_value": N_("{low} to {high}"),
    "console.dashboard.lift": N_("Difference (reminded minus holdout)"),
    "console.dashboard.points": N_("{points} percentage points"),
    "console.dashboard.points_interval": N_("{low} to {high} percentage points"),
    "console.dashboard.holdout_ci": N_(
        "The {confidence} interval is the range of differences these counts are compatible with. "
        "With few installments it is wide: while it includes zero, the figures cannot tell whether "
        "reminders help or not, and a difference of a few points needs about a thousand "
        "installments in each group."
    ),
    "console.dashboard.chart.holdout": N_(
        "On-time payment with and without reminders ({confidence} intervals)"
    ),
    "console.dashboard.rate_series": N_("Paid on time"),
}
