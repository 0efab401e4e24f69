# CPU image by default. For a CUDA image:
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 -t ptm-triage:cuda .
# (torch==2.13.0 then comes as its CUDA build from PyPI).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

RUN command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*)

WORKDIR /srv/ptm-triage
COPY . .
# The README's install step.
RUN bash scripts/setup.sh

# The service runs as a user of its own, owning only its data directory.
RUN useradd --system --uid 10001 --home-dir /var/lib/ptm-triage --create-home ptm-triage
USER ptm-triage

ENV HF_HUB_OFFLINE=1 \
    PTM_TRIAGE_DATA_DIR=/var/lib/ptm-triage
VOLUME /var/lib/ptm-triage
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD [".venv/bin/python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"]
CMD [".venv/bin/ptm-triage", "serve", "--host", "0.0.0.0", "--port", "3000"]
