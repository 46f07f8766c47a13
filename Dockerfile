# One image for every cefpipe component; the command picks the component
# (ingest, enrich, sink, emulator, topics, query ...).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CEFPIPE_HOME=/var/lib/cefpipe \
    LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY cefpipe ./cefpipe
COPY ingest ./ingest
COPY enrich ./enrich
COPY sink ./sink
COPY emulator ./emulator
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/cefpipe cefpipe \
    && mkdir -p /var/lib/cefpipe \
    && chown cefpipe /var/lib/cefpipe

USER cefpipe
ENTRYPOINT ["cefpipe"]
CMD ["--help"]
