"""Chat turn latency: the gateway (webhook in, reply at the fake Bot API) against bare Rasa."""
