"""What the chat assistant says: keys used by the Rasa domain and the custom actions."""

from i18n.messages import N_, NP_

MESSAGES = {
    # Small talk and help.
    "conv.greet": N_(
        "Hello! I am Kopa, your lender's automated assistant. I can tell you your balance and "
        "next payment, explain how to pay, note a promise to pay, or put you in touch with your "
        "loan officer."
    ),
    "conv.greet_name": N_(
        "Hello {first_name}! How can I help you today? You can ask for your balance, your next "
        "payment, how to pay, or your loan officer."
    ),
    "conv.goodbye": N_("Goodbye, and thank you. Write to me any time."),
    "conv.you_are_welcome": N_("You are welcome. Anything else I can do for you?"),
    "conv.ok": N_("Okay. Anything else I can do for you?"),
    "conv.bot_challenge": N_(
        'I am an automated assistant, not a person. To talk to a person, write "officer" and '
        "your loan officer will contact you."
    ),
    "conv.capabilities": N_(
        "Sorry, I can't help with that. I can tell you your balance, next payment, schedule and "
        "past payments, explain how to pay, note a promise to pay or a payment you made, help if "
        "you are having difficulties, or connect you with your loan officer."
    ),
    "conv.offer_person": N_(
        "Sorry, I am not understanding you well. Would you like your loan officer to contact you?"
    ),
    "conv.loan_terms": N_(
        "Your loan agreement has the full terms (interest, fees, duration). Your loan officer "
        'can explain them: write "officer" and they will contact you.'
    ),
    "conv.cancelled": N_(
        "No problem, I have stopped there. You can start again whenever you like."
    ),
    "conv.button.yes": N_("Yes"),
    "conv.button.no": N_("No"),
    "conv.button.officer": N_("Talk to my loan officer"),
    "conv.button.call_me": N_("Ask my officer to call me"),
    # "Did you mean": one button per request the bot was unsure between.
    "conv.did_you_mean": N_("Sorry, I'm not sure I understood. Did you mean:"),
    "conv.intent.ask_balance": N_("My balance"),
    "conv.intent.ask_next_due": N_("My next payment"),
    "conv.intent.ask_schedule": N_("My payment schedule"),
    "conv.intent.ask_payment_history": N_("My past payments"),
    "conv.intent.how_to_pay": N_("How to pay"),
    "conv.intent.report_payment": N_("I have paid"),
    "conv.intent.promise_to_pay": N_("Say when I will pay"),
    "conv.intent.hardship": N_("I am having difficulties"),
    "conv.intent.request_officer": N_("Talk to my loan officer"),
    "conv.intent.complaint": N_("Make a complaint"),
    "conv.intent.opt_out": N_("Stop reminders"),
    "conv.intent.opt_in": N_("Get reminders"),
    "conv.intent.change_language": N_("Change language"),
    "conv.intent.ask_loan_terms": N_("My loan terms"),
    "conv.languages": N_(
        "I speak English, French, Spanish and Swahili. Please write to me in one of them."
    ),
    # Verification.
    "conv.share_contact_button": N_("Share my phone number"),
    "conv.verify.share_contact": N_(
        "To protect your account, I first need to check who you are. Please tap the button "
        "below to share your phone number."
    ),
    "conv.verify.no_phone": N_(
        "To protect your account, I can only answer account questions from the phone number "
        "registered with your lender."
    ),
    "conv.verify.ask_dob": N_(
        "To check it is you, please type your date of birth (for example 14/03/1985)."
    ),
    "conv.verify.ask_national_id": N_(
        "To check it is you, please type the last 4 digits of your national ID number."
    ),
    "conv.verify.failed": NP_(
        "That does not match our records. You have {count} more try.",
        "That does not match our records. You have {count} more tries.",
    ),
    "conv.verify.ask_any": N_(
        "To check it is you, please type your date of birth (for example 14/03/1985) or the "
        "last 4 digits of your ID number."
    ),
    "conv.verify.not_an_answer": N_(
        "That is not a date of birth or ID digits, so it does not count as a try."
    ),
    "conv.verify.not_birth_date": N_(
        "That date cannot be your date of birth, so it does not count as a try."
    ),
    "conv.verify.after_check": N_(
        "I'll tell you that once I've checked it's you. I have noted it."
    ),
    "conv.verify.welcome": N_("You're welcome."),
    "conv.verify.hello": N_("Hello!"),
    "conv.verify.goodbye": N_(
        "Goodbye. When you want to continue, write to me again and I'll check it's you."
    ),
    "conv.verify.locked": N_(
        "For your security, checks are paused until {until}. Please try again then, or ask "
        "your loan officer to call you."
    ),
    "conv.verify.held": N_(
        "For your security, checks in this chat are stopped after too many tries. Your loan "
        "officer will call the phone number registered with your lender to help you."
    ),
    "conv.callback.requested": N_(
        "I have asked your loan officer to call you on the phone number registered with your "
        "lender. For your security I can't say more here until I've checked it's you."
    ),
    "conv.callback.share_contact": N_(
        "So that your loan officer can call you, please tap the button below to share your "
        "phone number."
    ),
    "conv.verify.done": N_("Thank you, that's confirmed."),
    # Account figures.
    "conv.no_loans": N_(
        'I can\'t find an active loan for you. If this seems wrong, write "officer".'
    ),
    "conv.balance": N_("Loan {reference}: you owe {outstanding} in total."),
    "conv.balance_arrears": NP_(
        "Loan {reference}: you owe {outstanding} in total, of which {arrears} is overdue by "
        "{count} day.",
        "Loan {reference}: you owe {outstanding} in total, of which {arrears} is overdue by "
        "{count} days.",
    ),
    "conv.balance_next_payment": N_("Your next payment of {amount} is due on {date}."),
    "conv.next_due": N_("Loan {reference}: your next payment of {amount} is due on {date}."),
    "conv.next_due_none": N_("Loan {reference}: you have no upcoming payment."),
    "conv.schedule_header": N_("Payment schedule for loan {reference}:"),
    "conv.schedule_line": N_("{seq}. {date}: {amount} ({status})"),
    "conv.installment.pending": N_("to pay"),
    "conv.installment.partial": N_("partly paid"),
    "conv.installment.paid": N_("paid"),
    "conv.payments_header": N_("Your latest payments on loan {reference}:"),
    "conv.payment_line": N_("{date}: {amount}"),
    "conv.payments_none": N_("No payment is recorded on loan {reference} yet."),
    # How to pay.
    "conv.how_to_pay": N_("To pay, always use your account reference {reference}:"),
    "conv.pay.paybill": N_("{provider}: Paybill {number}, account {reference}"),
    "conv.pay.till": N_("{provider}: Till number {number}"),
    "conv.pay.bank": N_("Bank: {bank}, account {account}, reference {reference}"),
    "conv.pay.agent": N_("Agent: {name}, {location}"),
    # Promise to pay.
    "conv.promise.ask_amount": N_(
        "How much will you pay? You can pay part of it. You owe {outstanding}."
    ),
    "conv.promise.ask_date": N_("On which day will you pay?"),
    "conv.promise.amount_unclear": N_(
        "Sorry, I didn't understand the amount. Please write it in figures, for example 1500."
    ),
    "conv.promise.amount_not_positive": N_("The amount must be more than zero."),
    "conv.promise.amount_above": N_(
        "That is more than you owe ({outstanding}). Please give an amount up to that."
    ),
    "conv.promise.date_unclear": N_(
        # No sample date: one could be the reader's own due date.
        'Sorry, I didn\'t understand the day. Write a weekday ("Friday"), "tomorrow", '
        "or the day and month in digits, day first."
    ),
    "conv.promise.date_past": N_("That day has passed. Please choose today or a later day."),
    "conv.promise.date_too_far": N_("Please choose a day no later than {max_date}."),
    "conv.promise.confirm": N_("You will pay {amount} on {date}. Is that right?"),
    "conv.promise.recorded": N_(
        "Thank you. I have noted your promise to pay {amount} on {date}. Your loan officer can "
        "see it."
    ),
    "conv.promise.cancelled": N_(
        "No problem, I have not noted anything. You can start again whenever you like."
    ),
    # Report a payment.
    "conv.payment_found": N_("Thank you! We received your payment of {amount} on {date}."),
    "conv.payment_not_found": NP_(
        "I can't see that payment yet. Payments can take up to {count} hour to show. I have "
        "noted it under reference {reference} so your loan officer can check.",
        "I can't see that payment yet. Payments can take up to {count} hours to show. I have "
        "noted it under reference {reference} so your loan officer can check.",
    ),
    # Hardship.
    "conv.hardship.sorry": N_(
        "I'm so sorry to hear that. You don't have to pay anything right now: let's look at "
        "what can help. Your loan officer can also call you."
    ),
    "conv.empathy.missed_payment": N_(
        "Thank you for letting me know, and don't worry: that can happen to anyone. Let's see "
        "together what you can do now."
    ),
    "conv.hardship.sorry_unsure": N_(
        "I'm sorry, it sounds like things are difficult. I'm here to help, not to ask you to "
        "pay. Would you like help with your loan, or a call from your loan officer?"
    ),
    "conv.hardship.ask_reason": N_(
        "I'm sorry things are hard right now. Can you tell me briefly what happened?"
    ),
    "conv.hardship.ask_relief": N_("Thank you for telling me. What would help you most?"),
    "conv.relief.more_time": N_("More time to pay"),
    "conv.relief.smaller_installments": N_("Smaller installments"),
    "conv.relief.pause": N_("A short pause"),
    "conv.hardship.opened": N_(
        "Thank you. Your request {reference} ({relief}) is open. {officer} will contact you by "
        "{by}. Reminders are paused until then."
    ),
    "conv.hardship.opened_branch": N_(
        "Thank you. Your request {reference} ({relief}) is open. Your branch will contact you "
        "by {by}. Reminders are paused until then."
    ),
    # Officer and complaints.
    "conv.officer.opened": N_(
        "I have asked {officer} to contact you (reference {reference}). Expect to hear from "
        "them by {by}."
    ),
    "conv.officer.opened_branch": N_(
        "I have asked your branch to contact you (reference {reference}). Expect to hear from "
        "them by {by}."
    ),
    "conv.complaint.opened": N_(
        "I'm sorry about this. Your complaint is recorded under reference {reference}. "
        "{officer} will reply by {by}."
    ),
    "conv.complaint.opened_branch": N_(
        "I'm sorry about this. Your complaint is recorded under reference {reference}. Your "
        "branch will reply by {by}."
    ),
    # A request the officer already has (an open case of that kind, or the day's cap reached).
    "conv.case.already_with_officer": N_(
        "{officer} already has your request (reference {reference}) and will contact you. "
        "I have added this message to it."
    ),
    "conv.case.already_with_branch": N_(
        "Your branch already has your request (reference {reference}) and will contact you. "
        "I have added this message to it."
    ),
    # Preferences.
    "conv.opted_out": N_(
        "Done: you will get no more reminders here. You can still write to me. Write START to "
        "get them again."
    ),
    "conv.opted_in": N_("Done: you will get reminders here again. Write STOP to stop them."),
    "conv.opt_in_or_out": N_("Just to be sure: do you want to stop reminders, or get them?"),
    "conv.ask_language": N_("Which language would you like?"),
    "conv.language_changed": N_("Done, I will write to you in English from now on."),
    "conv.lang.en": N_("English"),
    "conv.lang.fr": N_("Français"),
    "conv.lang.es": N_("Español"),
    "conv.lang.sw": N_("Kiswahili"),
}
