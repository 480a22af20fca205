# One image for all five services (signals, screening, matching, notify, municipalities).
# The default command runs signals; docker-compose.yml sets `command` per service:
#   python -m services.<name>.main
# Configuration comes from environment variables only (see docker-compose.yml).

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user; the services never need root.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# 1. Dependencies only, from pyproject.toml: this layer is rebuilt only when pyproject.toml
#    changes, not on every source edit.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# 2. The project itself (packages shared*, services*, deploy* with their package data),
#    installed into site-packages; the source copy is removed afterwards so that only the
#    installed package is imported.
COPY shared ./shared
COPY services ./services
COPY deploy ./deploy
RUN pip install --no-deps . \
 && cd / && rm -rf /src

# The working directory holds only run-time data (notify's local mailbox: .data/mailbox).
WORKDIR /app
RUN mkdir -p /app/.data/mailbox && chown -R app:app /app

USER app

EXPOSE 8080 8081 8082 8083 8084 8085
STOPSIGNAL SIGTERM
CMD ["python", "-m", "services.signals.main"]
