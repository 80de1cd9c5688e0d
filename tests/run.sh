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

echo "== installing mosaic-gym with test extras"
$PY -m pip install --quiet -e ".[dev,docker,train,vllm,ray,agentdojo,bfcl]"
# BFCL's checker and data only (see the bfcl extra in pyproject.toml for why --no-deps).
$PY -m pip install --quiet --no-deps "bfcl-eval==2026.3.23"

if [ "${MOSAIC_SKIP_DOCKER_SETUP:-0}" != "1" ] && [ -x sandboxes/setup_engine.sh ]; then
  echo "== docker engine (for the docker backend tests)"
  bash sandboxes/setup_engine.sh || echo "docker engine unavailable: docker tests will skip"
fi

echo "== scenario self-check over the whole library"
$PY -m mosaic_gym.cli scenarios check

echo "== external suites self-check (reduced)"
$PY -m mosaic_gym.cli suites check agentdojo --quick
$PY -m mosaic_gym.cli suites check bfcl --quick

echo "== test suite"
set +e
$PY -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$status"
