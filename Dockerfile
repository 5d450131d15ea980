# syntax=docker/dockerfile:1
# The procon operator image (charts/procon runs it): `procon run`, and
# `procon emulate stripe|checkout` for staging and end-to-end tests.
#
#   docker build -t procon:dev .
#
# Two stages: the first builds wheels for procon and its dependencies; the
# second installs them from those wheels alone into a virtualenv, with no
# compiler, no build tools and no pip left in the image, and runs as an
# unprivileged user with a read-only root filesystem in mind.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the package needs (see .dockerignore): a change to tests or docs
# does not rebuild the wheels.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Install from the wheels only (--no-index): what the build stage resolved
# is exactly what runs. The venv has no pip of its own; the base image's pip
# installs into it and is removed afterwards, with the rest of the base
# image's packaging tools.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    set -eux; \
    python -m venv --without-pip /opt/procon; \
    python -m pip --python /opt/procon/bin/python install --no-index --find-links=/wheels procon; \
    python -m pip uninstall --yes pip setuptools wheel; \
    /opt/procon/bin/procon --help > /dev/null
ENV PATH=/opt/procon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" UID/GID of distroless images; numeric so
# that runAsNonRoot can verify it without an /etc/passwd entry.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT ["procon"]
CMD ["run", "--liveness=http://0.0.0.0:8080/healthz"]
