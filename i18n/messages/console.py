"""The officers' web console: every word its pages show.

What the console says after an officer acts on a case reuses the chat's ``officer.*``
sentences, so an officer reads the same words in Telegram and in the browser.
"""

from i18n.messages import N_, NP_

MESSAGES = {
    "console.title": N_("Kopa console"),
    "console.login.heading": N_("Sign in to the Kopa console"),
    "console.login.email": N_("Work email"),
    "console.login.password": N_("Password"),
    "console.login.submit": N_("Sign in"),
    "console.login.failed": N_("Wrong email or password."),
    "console.login.locked": N_(
        "Too many wrong passwords: this account is locked until {until}. Ask your manager if "
        "you have forgotten your password."
    ),
    "console.login.rate_limited": N_(
        "Too many failed sign-ins from your network. Please wait a few minutes and try again."
    ),
    "console.form_expired": N_("This form has expired. Reload the page and try again."),
    "console.logout": N_("Sign out"),
    "console.signed_in_as": N_("Signed in as {name}, {role}"),
    "console.role.officer": N_("loan officer"),
    "console.role.manager": N_("branch manager"),
    "console.role.admin": N_("administrator"),
    "console.queue.heading": N_("Cases to work"),
    "console.queue.intro": N_(
        "Missed deadlines first, then the riskiest loans, then the oldest cases."
    ),
    "console.queue.count": NP_("{count} open case", "{count} open cases"),
    "console.queue.empty": N_("No open cases: nobody is waiting for you."),
    "console.column.reference": N_("Reference"),
    "console.column.kind": N_("Request"),
    "console.column.status": N_("Status"),
    "console.column.borrower": N_("Borrower"),
    "console.column.branch": N_("Branch"),
    "console.column.officer": N_("Officer"),
    "console.column.arrears": N_("Arrears"),
    "console.column.due": N_("Respond by"),
    "console.column.opened": N_("Opened"),
    "console.column.action": N_("Action"),
    "console.column.risk": N_("Risk"),
    "console.filter.all": N_("All"),
    "console.filter.bucket": N_("Days past due"),
    "console.filter.days_past_due": N_("{days} days"),
    "console.filter.apply": N_("Filter"),
    "console.status.open": N_("waiting"),
    "console.status.acknowledged": N_("claimed"),
    "console.status.called": N_("called"),
    "console.status.resolved": N_("resolved"),
    "console.sla_missed": N_("deadline missed"),
    "console.unassigned": N_("nobody"),
    "console.no_loan": N_("no loan"),
    "console.claim": N_("Claim"),
    "console.not_found.heading": N_("Not found"),
    "console.not_found.text": N_("This page does not exist, or it is not yours to see."),
    "console.back_to_queue": N_("Back to the cases"),
}
