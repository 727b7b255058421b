# One image for every service; the command picks which one runs:
#   docker run shop-backend python -m customer
# WEB_CONCURRENCY=N runs N uvicorn worker processes in the container (default 1; with more,
# give the services a Redis through REDIS_URL so rate limits are counted once).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 DATA_DIR=/data MEDIA_ROOT=/data/media WEB_CONCURRENCY=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY customer ./customer
COPY sellers ./sellers
COPY media ./media
COPY products ./products
COPY orders ./orders
COPY admin ./admin
COPY notifications ./notifications
# The services run from /app (not site-packages) as a user who cannot write it, with
# PYTHONDONTWRITEBYTECODE: without this compileall every start would compile every module.
RUN pip install . \
    && python -m compileall -q shared gateway customer sellers media products orders admin notifications \
    && useradd --system --uid 10001 app && mkdir -p /data && chown app /data

USER app
VOLUME ["/data"]
CMD ["python", "-m", "gateway"]
