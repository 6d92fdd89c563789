"""Messages shared by every channel and flow."""

from i18n.messages import N_

# What a borrower or officer hears when a part behind the bot does not answer in time (the
# gateway, the officers' desk and the actions all say it).
TRY_AGAIN_KEY = "common.try_again_shortly"

MESSAGES = {
    TRY_AGAIN_KEY: N_("Sorry, I can't answer right now. Please try again in a few minutes."),
    "common.opt_out_line": N_("Reply STOP to stop these messages."),
    # Rule C-9: every automated message names the way to complain. The reply word is one the
    # bot's NLU takes as the complaint intent in each language (nlu/data/nlu/<lang>.yml).
    "common.complaint_line": N_("To make a complaint, reply: complaint."),
    "common.invalid_input": N_("Sorry, I didn't understand that. Please try again."),
}
