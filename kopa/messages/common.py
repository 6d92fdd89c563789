"""Messages shared by every channel and flow."""

from kopa.messages import N_

MESSAGES = {
    "common.try_again_shortly": N_(
        "Sorry, I can't answer right now. Please try again in a few minutes."
    ),
    "common.opt_out_line": N_("Reply STOP to stop these messages."),
    "common.invalid_input": N_("Sorry, I didn't understand that. Please try again."),
}
