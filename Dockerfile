# MCPLookup: one stateless replica. Configure with environment variables (see README.md).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcplookup_mcp ./mcplookup_mcp
COPY sql ./sql
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 mcplookup
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER mcplookup
ENV MCPLOOKUP_HOST=0.0.0.0 PORT=8000 MCPLOOKUP_DATA_DIR=/home/mcplookup/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
CMD ["mcplookup", "serve"]
