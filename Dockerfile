# pipepulse: one image for the dashboard, the scheduler and one-shot commands.
# The command picks the role (ENTRYPOINT is `pipepulse`):
#   docker run IMAGE                                   -> dashboard on 0.0.0.0:8501 (needs a login, below)
#   docker run IMAGE schedule                          -> collectors and digests on their schedules
#   docker run IMAGE db upgrade | retention apply | collect | alerts digest ...
# The dashboard refuses a non-loopback address without a login and without the names users reach
# it by: compose and ECS mount a Streamlit secrets file with [pipepulse.users.*] (or OIDC [auth])
# at /run/secrets/dashboard.toml and add --allowed-host NAME (or [dashboard] allowed_hosts).
#
# Base pinned by tag and by the digest of its multi-architecture index (the tag is rebuilt now and
# then; the digest is not). To move to a newer build, resolve it where a registry is reachable:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
# and replace both FROM lines (docs/deploy.md, "Supply chain").
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/pipepulse
ENV PATH=/opt/pipepulse/bin:$PATH
WORKDIR /src
# Dependencies first so code changes reuse this layer: requirements.lock is requirements.txt with
# every transitive package pinned and hashed (pip-compile --generate-hashes); pip refuses any file
# whose hash is not in it. No moto, no development tools (requirements-dev.txt).
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
# The runtime packages; devkit/ (the local AWS, the demo) is development-only and stays out.
COPY pipepulse ./pipepulse
COPY store ./store
COPY pipeline ./pipeline
COPY collectors ./collectors
COPY insights ./insights
COPY alerts ./alerts
COPY jobs ./jobs
COPY cli ./cli
COPY dashboard ./dashboard
# --no-deps: nothing beyond the lock gets in.
RUN pip install --no-cache-dir --no-deps . && pip check
# The RDS certificate authorities, for sslmode=verify-full (deploy/cloudformation/pipepulse.yaml);
# fetched over HTTPS from AWS's trust store at build time (ADD gives a URL's file mode 600).
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /opt/pipepulse/rds-global-bundle.pem
RUN chmod 0644 /opt/pipepulse/rds-global-bundle.pem


FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

LABEL org.opencontainers.image.title="pipepulse" \
      org.opencontainers.image.description="Observability and cost dashboard for data pipelines on AWS" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/pipepulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIPEPULSE_DATA_DIR=/var/lib/pipepulse \
    PIPEPULSE_LOG_FORMAT=json \
    PIPEPULSE_LOCAL_AWS=false \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN groupadd --system --gid 10001 pipepulse \
    && useradd --system --uid 10001 --gid pipepulse --home-dir /var/lib/pipepulse --create-home --shell /usr/sbin/nologin pipepulse

COPY --from=build /opt/pipepulse /opt/pipepulse

USER 10001:10001
WORKDIR /var/lib/pipepulse
VOLUME ["/var/lib/pipepulse"]
EXPOSE 8501

# Database reachable and schema current; the dashboard service adds --url .../_stcore/health.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["pipepulse", "healthcheck"]

ENTRYPOINT ["pipepulse"]
CMD ["dashboard", "serve", "--address", "0.0.0.0", "--port", "8501", "--secrets", "/run/secrets/dashboard.toml"]
