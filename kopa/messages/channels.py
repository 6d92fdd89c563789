"""What the channel gateways themselves say (before or instead of a Rasa answer)."""

from kopa.messages import N_

MESSAGES = {
    "channels.contact_not_yours": N_(
        "For your safety I can only use your own phone number. Please tap the button "
        '"Share my phone number" below instead of sending a contact.'
    ),
    "channels.unsupported_message": N_(
        "Sorry, I can only read text messages. Please type your question."
    ),
}
