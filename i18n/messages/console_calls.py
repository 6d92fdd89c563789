"""The console's words for a call recorded about a loan outside any case, from a broken
promise's follow-up (outcomes reuse ``console.call.*``)."""

from i18n.messages import N_

MESSAGES = {
    "console.followup.call_heading": N_("Record a call about a loan"),
    "console.followup.call_intro": N_(
        "For a call outside any case, such as about a promise not kept. The borrower is not told."
    ),
    "console.followup.call_recorded": N_("Call recorded: {outcome}."),
    "console.followup.no_outcome": N_("Choose what happened on the call."),
    "console.followup.form_reused": N_(
        "This form was already sent for another loan. Reload the page."
    ),
    "console.followup.last_call": N_("Last call: {outcome}"),
    "console.followup.call_and_record": N_("Call and record"),
    "console.followup.timeline_call": N_("{officer} called about loan {account}: {outcome}"),
}
