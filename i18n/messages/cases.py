"""Cases (hardship, officer requests, complaints, payment claims): officer alerts and updates.

Officer alerts carry only what an officer needs to act: reference, kind, category, relief,
the borrower's first name, a masked phone, days past due and arrears.
"""

from i18n.messages import N_, NP_

MESSAGES = {
    # To the assigned officer when a case opens (count = days past due).
    "cases.officer_alert": NP_(
        "New {kind} {reference} from {first_name} ({phone}). Reason: {category}. Asks for: "
        "{relief}. {count} day past due, arrears {arrears}. Please respond by {due}.",
        "New {kind} {reference} from {first_name} ({phone}). Reason: {category}. Asks for: "
        "{relief}. {count} days past due, arrears {arrears}. Please respond by {due}.",
    ),
    # To the branch manager when nobody acknowledged a case before its deadline.
    "cases.escalation_alert": NP_(
        "Escalated: {kind} {reference} from {first_name} ({phone}) was not acknowledged by "
        "{officer_name} before {due}. Please take it over. {count} day past due, arrears "
        "{arrears}.",
        "Escalated: {kind} {reference} from {first_name} ({phone}) was not acknowledged by "
        "{officer_name} before {due}. Please take it over. {count} days past due, arrears "
        "{arrears}.",
    ),
    "cases.kind.hardship": N_("hardship request"),
    "cases.kind.officer_request": N_("request to talk to an officer"),
    "cases.kind.complaint": N_("complaint"),
    "cases.kind.payment_claim": N_("payment not yet received"),
    "cases.category.illness": N_("illness"),
    "cases.category.death_in_family": N_("death in the family"),
    "cases.category.business_loss": N_("business loss"),
    "cases.category.job_loss": N_("job loss"),
    "cases.category.disaster": N_("disaster (fire, flood, drought)"),
    "cases.category.theft": N_("theft"),
    "cases.category.other": N_("other reason"),
    "cases.category.none": N_("not given"),
    "cases.relief.more_time": N_("more time to pay"),
    "cases.relief.smaller_installments": N_("smaller installments"),
    "cases.relief.pause": N_("a pause in payments"),
    "cases.relief.none": N_("nothing specific"),
    "cases.button.acknowledge": N_("Acknowledge"),
    "cases.button.called": N_("I called them"),
    "cases.button.resolve.plan_agreed": N_("Close: plan agreed"),
    "cases.button.resolve.payment_holiday": N_("Close: payment holiday"),
    "cases.button.resolve.restructure_requested": N_("Close: restructure requested"),
    "cases.button.resolve.no_action": N_("Close: no action needed"),
    # To the borrower, in their language, when their case changes.
    "cases.update.acknowledged": N_(
        "Your request {reference} has been received by {officer_name}, who will contact you soon."
    ),
    "cases.update.called": N_(
        "Thank you for speaking with {officer_name} about your request {reference}."
    ),
    "cases.update.resolved": N_("Your request {reference} is now closed: {outcome}. Thank you."),
    "cases.outcome.plan_agreed": N_("we agreed on a repayment plan"),
    "cases.outcome.payment_holiday": N_("you have a break from payments"),
    "cases.outcome.restructure_requested": N_("a change to your loan has been requested"),
    "cases.outcome.no_action": N_("no change was needed"),
}
