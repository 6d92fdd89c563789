"""The console's words for follow-ups in the queue and promises recorded for a borrower.

``console.promise.borrower_told`` is what the borrower reads on their chat, in their language.
"""

from i18n.messages import N_, NP_

MESSAGES = {
    "console.queue.follow_ups": N_("Follow-ups due"),
    "console.queue.follow_up_count": NP_("{count} follow-up due", "{count} follow-ups due"),
    "console.queue.no_follow_ups": N_("No follow-ups due."),
    "console.queue.follow_up.broken_promise": N_("Promise not kept"),
    "console.queue.follow_up.call_back": N_("Call again"),
    "console.queue.follow_up.record_promise": N_("Record the promise made on the phone"),
    "console.queue.what": N_("What"),
    "console.queue.promise_unkept": N_("Promised {amount} by {date}; {paid} paid"),
    "console.queue.call_on_case": N_("Case {reference}: {outcome}"),
    "console.queue.open_case": N_("Open case {reference}"),
    "console.queue.open_borrower": N_("Open the borrower"),
    "console.case.record_promise": N_("Record a promise to pay for this borrower"),
    "console.promise.heading": N_("Record a promise to pay"),
    "console.promise.intro": N_(
        "For a promise the borrower made on the phone or at the branch. The borrower is told in "
        "their language."
    ),
    "console.promise.loan": N_("Loan"),
    "console.promise.owed": N_("{amount} owed"),
    "console.promise.amount": N_("Amount"),
    "console.promise.date": N_("Pay by (from {first} to {last})"),
    "console.promise.submit": N_("Record the promise"),
    "console.promise.recorded": N_("Promise recorded: {amount} by {date}. The borrower is told."),
    "console.promise.borrower_told": N_(
        "{officer_name} has recorded your promise to pay {amount} by {date}. Thank you."
    ),
    "console.promise.error.amount_format": N_(
        "Write the amount as a number in {currency}, with at most {decimals} decimal places."
    ),
    "console.promise.error.amount_not_positive": N_("The amount must be more than zero."),
    "console.promise.error.amount_above_outstanding": N_(
        "The amount is more than the {outstanding} still owed on this loan."
    ),
    "console.promise.error.date_format": N_("Choose the day the borrower will pay by."),
    "console.promise.error.date_in_past": N_("That day has passed: choose today or a later day."),
    "console.promise.error.date_beyond_policy": N_(
        "That day is too far ahead: choose a day no later than {max_date}."
    ),
    "console.promise.error.form_reused": N_(
        "This form was already sent with other values. Reload the page."
    ),
}
