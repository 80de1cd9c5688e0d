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

# Each stage's header says how long the run has taken so far (CI must stay under 30 min).
stage() { echo "== [+${SECONDS} s] $*"; }

# Most users run the tests inside a virtual environment, whose base Python lacks the
# dependencies: prove the packaging test holds there too. It runs first, so that on a
# clean machine the base interpreter really has none of them yet.
if [ "${MOSAIC_SKIP_VENV_CHECK:-0}" != "1" ]; then
  stage "packaging test inside a virtual environment"
  VENV_DIR=$(mktemp -d)
  $PY -m venv "$VENV_DIR/venv"
  "$VENV_DIR/venv/bin/python" -m pip install --quiet -e . pytest pytest-timeout hypothesis \
    "setuptools>=68" wheel
  "$VENV_DIR/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_packaging.py
  rm -rf "$VENV_DIR"
fi

stage "installing mosaic-gym with test extras"
$PY -m pip install --quiet -e ".[dev,testing,docker,train,vllm,ray,inspect,openenv,report,agentdojo,bfcl]"
# BFCL's checker and data only (see the bfcl extra in pyproject.toml for why --no-deps).
$PY -m pip install --quiet --no-deps "bfcl-eval==2026.3.23"

# The viewer's browser test drives Debian's chromium through chromedriver (selenium).
if { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; } \
    && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  stage "chromium and chromium-driver (for tests/apps/test_viewer_browser.py)"
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null \
    || echo "chromium unavailable: the browser test will skip"
fi

if [ "${MOSAIC_SKIP_DOCKER_SETUP:-0}" != "1" ] && [ -x sandboxes/setup_engine.sh ]; then
  stage "docker engine (for the docker backend tests)"
  bash sandboxes/setup_engine.sh || echo "docker engine unavailable: docker tests will skip"
fi

stage "import contracts: every import points down the layers (pyproject.toml)"
$PY -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"

stage "scenario self-check over the whole library"
$PY -m mosaic_gym.cli scenarios check

stage "external suites self-check (reduced)"
$PY -m mosaic_gym.cli suites check agentdojo --quick
$PY -m mosaic_gym.cli suites check bfcl --quick

stage "test suite"
set +e
$PY -m pytest -q --durations=15 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  status=1
fi

# The worked examples of mosaic_gym/testing/GUIDE.md: a package outside tests/ that imports
# only the public API, run the way a user runs them (a second pytest, its own rootdir, so
# tests/conftest.py plays no part). Both runs always happen; either failing fails the script.
stage "mosaic_gym.testing examples (GUIDE.md)"
set +e
$PY -m pytest -q -p no:cacheprovider --rootdir mosaic_gym/testing/examples \
  --mosaic-profile fast mosaic_gym/testing/examples
examples=$?
set -e
if [ "$examples" -eq 5 ]; then
  echo "the GUIDE examples collected no tests: treating as a failure" >&2
  examples=1
fi
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  stage "stress: hostile inputs within their bounds (reduced form)"
  MOSAIC_STRESS=1 $PY -m pytest -q -p no:cacheprovider tests/stress || status=$?
fi
stage "done"
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
exit "$examples"
