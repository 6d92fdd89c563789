"""What the channel gateways themselves say (before or instead of a Rasa answer)."""

from i18n.messages import N_

MESSAGES = {
    "channels.contact_not_yours": N_(
        "For your safety I can only use your own phone number. Please tap the button "
        '"Share my phone number" below instead of sending a contact.'
    ),
    # Said in a group or supergroup, never more: account questions belong in a private chat.
    "channels.private_only": N_(
        "For your privacy I only talk about accounts in a private chat. Please message me directly."
    ),
    "channels.unsupported_message": N_(
        "Sorry, I can only read text messages. Please type your question."
    ),
}
