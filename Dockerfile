# One image for every application process (api, worker, projector, feed); the command picks.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY oee ./oee
COPY domain ./domain
COPY schemas ./schemas
COPY streams ./streams
COPY projections ./projections
COPY producers ./producers
COPY api ./api
COPY infra ./infra
COPY bench ./bench
RUN pip install .
CMD ["oee", "api"]
