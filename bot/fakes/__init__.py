"""Local stand-ins for the Telegram Bot API and the WhatsApp Cloud API.

They speak the providers' wire formats so that python-telegram-bot and our WhatsApp client run
unchanged against them; they record every request, deliver updates to the gateway the way the
providers do (secret-token header, ``X-Hub-Signature-256``) and inject the faults the gateways and
the notifier must survive. Run them in-process with :class:`bot.fakes.runner.ServerThread` or as
``kopa fake telegram|whatsapp --port``.
"""
