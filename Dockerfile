# The lanes image: workers, Flower (`lanes flower`) and the Prometheus exporter (`lanes metrics`).
# Dependencies are installed as root; everything runs as the unprivileged user `lanes` (uid
# 10001). No secret is baked in: only the source directories below are copied (never `.env` or
# `secrets/`), and API keys and passwords arrive at run time (environment, /run/secrets).
FROM python:3.11-slim

# HOME on /tmp: compose gives every service a tmpfs there and a read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

WORKDIR /app
COPY pyproject.toml README.md ./
COPY lanes ./lanes

# A regular (not editable) install: the code, the default config and everything else lanes
# reads at run time come from site-packages (the measurement code, lanes/bench, is left out of
# the package). The user owns nothing but its metrics directory (where a named volume is
# mounted); the code and config stay root-owned and read-only to it.
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin lanes \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/lanes /var/lib/lanes/metrics

USER 10001:10001
CMD ["lanes", "--help"]
