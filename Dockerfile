# syntax=docker/dockerfile:1
#
# tenant-guard admission webhook image.
#
#   docker build -t tenant-guard:0.1.0 .
#
# Both stages use the same pinned Python base (bump the patch version deliberately; for
# reproducible builds also pin the digest: python:3.11.13-slim-bookworm@sha256:...). The venv
# built in the first stage is copied to the same path in the second, where its interpreter
# symlink (/usr/local/bin/python3.11) exists too.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- builder: build and install the package with its dependencies into /opt/venv -------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
# Only what `pip install .` needs (see .dockerignore): metadata, README (named by pyproject's
# `readme`) and the package. All runtime dependencies, uvloop and httptools included, ship
# manylinux wheels, so no compiler is needed here either.
COPY pyproject.toml README.md ./
COPY webhook/ webhook/
# Installing compiles the .pyc files now: at run time the root filesystem is read-only.
# pip, setuptools and wheel are then removed: nothing installs packages at run time.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall --yes pip setuptools wheel

# --- runtime: the same slim base plus the venv, nothing else ------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="tenant-guard" \
      org.opencontainers.image.description="Kubernetes admission webhook enforcing tenant boundaries in a shared Istio mesh" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric UID/GID (10001) that exists in no base image: the Deployment sets the same
# runAsUser, and USER below is numeric so that the kubelet can verify runAsNonRoot.
RUN groupadd --system --gid 10001 tenant-guard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tenant-guard

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 10001:10001

# HTTPS: /validate, /mutate, /healthz, /readyz, /metrics.
EXPOSE 8443

# No HEALTHCHECK: Kubernetes ignores it; the Deployment's startup, readiness and liveness probes
# call /healthz and /readyz over HTTPS instead.
ENTRYPOINT ["tenant-guard"]
# The Deployment replaces these args (adding --in-cluster and, in the self-managed overlay,
# --manage-certs ...); they are the defaults for `docker run` with the config and the
# certificate directory mounted at these paths.
CMD ["serve", "--config", "/etc/tenant-guard/config/config.yaml", "--cert-dir", "/etc/tenant-guard/tls", "--host", "0.0.0.0", "--port", "8443"]
