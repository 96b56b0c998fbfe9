# The semsearch image used by docker-compose.yml for workers and the CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY semsearch ./semsearch
COPY ingest ./ingest
COPY mappings ./mappings
RUN pip install --no-cache-dir .
ENV HF_HUB_OFFLINE=1
ENTRYPOINT []
CMD ["semsearch", "--help"]
