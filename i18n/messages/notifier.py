"""Reminder and incentive campaign messages (issue 5) and the notifier's officer alerts.

Every campaign text is rendered by :mod:`notifier.render`, which appends the opt-out line
(``common.opt_out_line``) in the same language. Rule C-7: no threats, no shaming, no legal
bluffs; conditions of incentives stated plainly. ``config/banned_phrases.yml`` is checked against
every rendering by ``tests/notifier/test_notify_templates.py``.
"""

from i18n.messages import N_, NP_

MESSAGES = {
    "notify.reminder.upcoming": N_(
        "Hello! A friendly reminder: your installment of {amount} for account {account} "
        "is due on {due_date}."
    ),
    "notify.reminder.due_today": N_(
        "Hello! Your installment of {amount} for account {account} is due today. "
        "Thank you for paying on time."
    ),
    "notify.reminder.overdue": N_(
        "Hello. We have not yet received your installment of {amount} for account {account}, "
        "due on {due_date}. If you have already paid, thank you, and please ignore this message."
    ),
    "notify.reminder.overdue_help": N_(
        "Hello. Your installment of {amount} for account {account}, due on {due_date}, is still "
        "open. If paying is difficult right now, reply HELP and a loan officer will contact you "
        "to find a solution together."
    ),
    # Rule C-6: for a channel not verified as the borrower's: no amount, no account, no arrears.
    "notify.reminder.limited": N_(
        "Hello, this is a message from your microfinance institution. Please contact us when "
        "it is convenient for you."
    ),
    "notify.promise.today": N_(
        "Hello! Today is the day you planned to pay {amount} for account {account}. "
        "Thank you for keeping your plan."
    ),
    "notify.promise.followup": N_(
        "Hello. We have not yet received the {amount} you planned to pay on {promised_date}. "
        "If something changed, just reply and we will find a way together."
    ),
    "notify.incentive.thanks": N_(
        "Thank you! We received your installment for account {account} on time."
    ),
    "notify.incentive.streak": NP_(
        "Well done! You have paid {count} installment in a row on time for account {account}. "
        "Thank you!",
        "Well done! You have paid {count} installments in a row on time for account {account}. "
        "Thank you!",
    ),
    "notify.incentive.early_repayment": N_(
        "Good to know: you may repay the remaining balance of account {account} early, at any "
        "time. Conditions: there is no fee or penalty for repaying early, interest stops on the "
        "day you repay in full, and your loan officer confirms the exact amount on that day."
    ),
    "notify.incentive.next_cycle": N_(
        "Congratulations! You have repaid account {account} in full. You are eligible to apply "
        "for your next loan (cycle {cycle}); approval follows the usual review. Reply LOAN or "
        "visit your branch to learn more."
    ),
    # Rule C-6: one member's reminder never mentions another member's payments.
    "notify.group.meeting": N_(
        "Hello! A reminder: your group {group} meets on {meeting_at} at {place}."
    ),
    "notify.officer.dead_letter": N_(
        "A message to the borrower of account {account} could not be delivered after {attempts} "
        "attempts. Please check their contact details."
    ),
}
