"""What the gateway tells an officer who pressed a case button.

The alerts themselves and the borrower's case updates are the loan API's (``cases.*`` in
``i18n/messages/cases.py``).
"""

from i18n.messages import N_

MESSAGES = {
    "officer.outcome.plan_agreed": N_("Plan agreed"),
    "officer.outcome.payment_holiday": N_("Payment holiday"),
    "officer.outcome.restructure_requested": N_("Restructure requested"),
    "officer.outcome.no_action": N_("No action"),
    "officer.done.acknowledged": N_("Case {reference} acknowledged. The borrower has been told."),
    "officer.done.called": N_("Case {reference}: call recorded."),
    "officer.done.resolved": N_(
        "Case {reference} resolved: {outcome}. The borrower has been told."
    ),
    "officer.choose_outcome": N_("How was case {reference} resolved?"),
    "officer.not_an_officer": N_("These buttons are for loan officers only."),
    "officer.case_not_found": N_("I could not find case {reference}."),
    "officer.case_not_yours": N_("Case {reference} is assigned to another officer."),
    "officer.case_closed": N_("Case {reference} is already resolved."),
}
