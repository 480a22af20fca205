# The production image of all five services (signals, screening, matching, notify,
# municipalities). The default command runs signals; docker-compose.yml sets `command` per
# service: python -m services.<name>.main. Configuration comes from environment variables only.
#
# Two stages: the build stage installs the runtime dependencies from requirements.lock (every
# transitive dependency pinned, each file checked against its SHA-256; binary wheels only) and
# the project itself into a virtual environment; the runtime stage copies only that environment.
# No compiler, no pip cache, none of the embedded default's tools (PostgreSQL, the Tansu broker,
# the SMTP mailbox: the `embedded` extra) and no tests end up in the image.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# 1. Dependencies only, from the lock: this layer is rebuilt only when the lock changes.
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: --requirement requirements.lock

# 2. The project (the shared and services packages), without resolving anything again.
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN /opt/venv/bin/pip install --no-deps .


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

# An unprivileged user; the services never need root.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

# The working directory holds only run-time data (notify's local mailbox: .data/mailbox).
WORKDIR /app
RUN mkdir -p /app/.data/mailbox && chown -R app:app /app

# Numeric, so an orchestrator can verify that the user is not root without reading /etc/passwd.
USER 10001:10001

# Public ports 8080-8085; internal ports (metrics, API documentation) 9080-9085.
EXPOSE 8080 8081 8082 8083 8084 8085 9080 9081 9082 9083 9084 9085
STOPSIGNAL SIGTERM
CMD ["python", "-m", "services.signals.main"]
