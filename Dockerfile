# syntax=docker/dockerfile:1
# The Hustle server image: `python -m server serve` (fly.toml also runs `worker` from it).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, pinned, so that code changes reuse this layer.
COPY pyproject.toml constraints.txt README.md ./
COPY server/__init__.py server/__init__.py
COPY jobs/__init__.py jobs/__init__.py
COPY hustle/__init__.py hustle/__init__.py
RUN pip install -c constraints.txt .

FROM python:3.11-slim-bookworm AS runtime
ARG BUILD_COMMIT=unknown
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=prod \
    LOG_FORMAT=json \
    BUILD_COMMIT=${BUILD_COMMIT} \
    PROMETHEUS_MULTIPROC_DIR=/tmp/hustle-metrics
RUN groupadd --system --gid 10001 hustle \
 && useradd --system --uid 10001 --gid hustle --no-create-home --shell /usr/sbin/nologin hustle
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code runs from /app (python -m puts it first on sys.path), next to its sql/ and migrations/.
COPY --chown=root:root hustle ./hustle
COPY --chown=root:root server ./server
COPY --chown=root:root jobs ./jobs
COPY --chown=root:root sql ./sql
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root templates ./templates
USER hustle
EXPOSE 50051 8080 9191
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"
CMD ["python", "-m", "server", "serve"]
