"""The docker backend's pure helpers: world planning and snapshot parsing (no engine needed)."""

from __future__ import annotations

import errno
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mosaic_gym.sandbox.base import HOME, FileSpec
from mosaic_gym.sandbox.docker.pool import WORK_ROOTS
from mosaic_gym.sandbox.docker.world import (
    decode_capped,
    file_error,
    parse_listing,
    parse_snapshot,
    plan_world,
)

TOKEN = "f00dfeedcafe1234"


@pytest.fixture
def _needs_engine() -> None:
    """These tests need no Docker engine (overrides the folder's autouse fixture)."""


def test_plan_creates_parents_and_defers_read_only_directories() -> None:
    plan = plan_world(
        [FileSpec("/srv/app", is_dir=True, mode=0o555), FileSpec("/srv/app/a.conf", b"x")],
        WORK_ROOTS,
    )
    assert plan.states["/srv/app"].mode == 0o555
    assert plan.states["/srv/app/a.conf"].sha256 == hashlib.sha256(b"x").hexdigest()
    assert plan.chmods == ((0o555, "/srv/app"),)
    assert plan.archive  # a tar to extract


@pytest.mark.parametrize(
    ("specs", "error"),
    [
        ([FileSpec("relative.txt")], ValueError),
        ([FileSpec(f"{HOME}/a", b"f"), FileSpec(f"{HOME}/a/b", b"c")], NotADirectoryError),
        ([FileSpec(f"{HOME}/d", is_dir=True), FileSpec(f"{HOME}/d", b"f")], IsADirectoryError),
        ([FileSpec(f"{HOME}/f", b"f"), FileSpec(f"{HOME}/f", is_dir=True)], NotADirectoryError),
        ([FileSpec("/usr/local/x", b"x")], PermissionError),
        ([FileSpec(HOME, b"not a dir")], IsADirectoryError),
    ],
)
def test_plan_refuses_what_cannot_be_laid_down(specs: list[FileSpec], error: type) -> None:
    with pytest.raises(error):
        plan_world(specs, WORK_ROOTS)


def _record(kind: str, text: str) -> bytes:
    return f"{TOKEN}{kind}{text}\n".encode()


def test_parse_snapshot_handles_odd_names_and_relaxed_modes() -> None:
    odd = f"{HOME}/we ird\nname.txt"
    data = b"secret"
    digest = hashlib.sha256(data).hexdigest()
    output = b"".join(
        [
            _record("F", f"0 {odd}"),
            _record("S", f"41ed 4096 {HOME}"),
            _record("S", f"8100 {len(data)} {odd}"),
            _record("S", "81a4 12 /etc/hosts"),
            _record("S", f"a1ff 3 {HOME}/link"),
            f"{TOKEN}H\n{digest}  {odd}\n{'0' * 64}  /etc/hosts\n".encode(),
            _record("L", f"'{HOME}/link' -> 'x y'"),
        ]
    )
    parsed = parse_snapshot(output, TOKEN, frozenset({"/etc/hosts"}))
    assert parsed.relaxed == {odd: 0}
    assert parsed.states[odd].mode == 0 and parsed.states[odd].sha256 == digest
    assert parsed.states[HOME].is_dir and parsed.states[HOME].size == 0
    assert parsed.states[f"{HOME}/link"].sha256 == hashlib.sha256(b"x y").hexdigest()
    assert "/etc/hosts" not in parsed.states


def test_parse_snapshot_refuses_hashes_out_of_step() -> None:
    output = _record("S", f"81a4 1 {HOME}/a") + f"{TOKEN}H\n{'0' * 64}  {HOME}/b\n".encode()
    with pytest.raises(ValueError):
        parse_snapshot(output, TOKEN, frozenset())


def test_parse_listing_sorts_and_zeroes_directory_sizes() -> None:
    output = _record("", f"81a4 5 {HOME}/b.txt") + _record("", f"41ed 4096 {HOME}/a dir")
    entries = parse_listing(output, TOKEN)
    assert [(e.name, e.is_dir, e.size, e.mode) for e in entries] == [
        ("a dir", True, 0, 0o755),
        ("b.txt", False, 5, 0o644),
    ]


def test_file_errors_map_to_oserror_subclasses() -> None:
    assert isinstance(file_error(2, b"", "p"), FileNotFoundError)
    assert isinstance(file_error(21, b"", "p"), IsADirectoryError)
    assert isinstance(file_error(28, b"sh: can't create x: Read-only file system", "p"),
                      PermissionError)  # fmt: skip
    error = file_error(28, b"No space left on device", "p")
    assert error is not None and error.errno == errno.ENOSPC
    assert file_error(0, b"", "p") is None


@given(st.text(max_size=40), st.integers(min_value=0, max_value=60))
def test_decode_capped_never_exceeds_the_cap(text: str, cap: int) -> None:
    decoded, truncated = decode_capped(text.encode(), cap)
    assert len(decoded.encode()) <= max(cap, len(text.encode()) if not truncated else cap)
    assert truncated == (len(text.encode()) > cap)
    if not truncated:
        assert decoded == text
    else:
        assert text.startswith(decoded)
