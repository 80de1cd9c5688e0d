#!/usr/bin/env bash
# Install everything the test suite needs, then run it. Safe to run again.
# Used verbatim by .ci/run and the README ("bash tests/run.sh").
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# torch is pinned to the local CPU build; a constraints file keeps pip from
# pulling a multi-GB CUDA build when another package asks for torch.
export PIP_CONSTRAINT="$PWD/tests/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Most users run the tests inside a virtual environment, whose base Python lacks the
# dependencies: prove the packaging test holds there too. It runs first, so that on a
# clean machine the base interpreter really has none of them yet.
if [ "${MOSAIC_SKIP_VENV_CHECK:-0}" != "1" ]; then
  echo "== packaging test inside a virtual environment"
  VENV_DIR=$(mktemp -d)
  $PY -m venv "$VENV_DIR/venv"
  "$VENV_DIR/venv/bin/python" -m pip install --quiet -e . pytest pytest-timeout hypothesis \
    "setuptools>=68" wheel
  "$VENV_DIR/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_packaging.py
  rm -rf "$VENV_DIR"
fi

echo "== installing mosaic-gym with test extras"
$PY -m pip install --quiet -e ".[dev,docker,train,vllm,ray]"

if [ "${MOSAIC_SKIP_DOCKER_SETUP:-0}" != "1" ] && [ -x sandboxes/setup_engine.sh ]; then
  echo "== docker engine (for the docker backend tests)"
  bash sandboxes/setup_engine.sh || echo "docker engine unavailable: docker tests will skip"
fi

echo "== scenario self-check over the whole library"
$PY -m mosaic_gym.cli scenarios check

echo "== test suite"
set +e
$PY -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  echo "== stress: hostile inputs within their bounds (reduced form)"
  MOSAIC_STRESS=1 $PY -m pytest -q tests/stress || status=$?
fi
exit "$status"
