# TokenLedger's container image: see docs/operations.md ("Container").
#   podman build -t tokenledger .        (or: docker build -t tokenledger .)
#   podman run -p 8000:8000 -v tokenledger-data:/var/lib/tokenledger \
#     -e TOKENLEDGER_ADMIN_PASSWORD=... tokenledger
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# Every install step is in this script, which CI runs too (tests/test_container.py).
COPY pyproject.toml README.md /build/
COPY src /build/src
COPY scripts/container-install.sh /build/scripts/container-install.sh
RUN sh /build/scripts/container-install.sh /build /opt/tokenledger && rm -rf /build

# Not root: the server owns only its data directory, the volume.
RUN useradd --system --uid 10001 --user-group --shell /usr/sbin/nologin \
      --home-dir /var/lib/tokenledger --create-home tokenledger
ENV PATH=/opt/tokenledger/bin:$PATH \
    TOKENLEDGER_DATABASE_URL=sqlite:////var/lib/tokenledger/tokenledger.db
VOLUME ["/var/lib/tokenledger"]
USER tokenledger
WORKDIR /var/lib/tokenledger
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["tokenledger", "serve", "--host", "0.0.0.0"]
