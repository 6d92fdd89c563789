# Kopa's Python 3.11 application image: the loan API, the channel gateway, the notifier and the
# Rasa SDK action server all run from it, each with its own command (see docker-compose.yml).
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# Run from the source tree (python -m kopa.cli): the code finds its catalogs, migrations and
# campaign files next to itself.
COPY api ./api
COPY bot ./bot
COPY notifier ./notifier
COPY actions ./actions
COPY kopa ./kopa
COPY i18n ./i18n
COPY portfolio ./portfolio
COPY locales ./locales
COPY config ./config
RUN pybabel compile --use-fuzzy -d locales -D messages

# An unprivileged user; the application writes nothing to its own files.
RUN useradd --system --uid 10001 --home-dir /app kopa
USER kopa

ENV KOPA_ENV=production
EXPOSE 8000 8080 5055
CMD ["python", "-m", "kopa.cli", "serve", "api", "--host", "0.0.0.0", "--port", "8000"]
