"""The shared conformance suite on the in-process fake backend, plus what only the
fake backend promises (version counter, cached snapshots, cheap resets)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import HOME, FileSpec
from mosaic_gym.sandbox.conformance import TEXT, WORLD, SandboxConformance, SandboxFactory
from mosaic_gym.sandbox.fake.sandbox import FakeSandbox


class TestFakeConformance(SandboxConformance):
    KNOWN_DIFFERENCES: ClassVar[dict[str, str]] = {}

    @pytest.fixture
    def sandbox_factory(self) -> SandboxFactory:
        def factory(http: Any = None) -> FakeSandbox:
            return FakeSandbox(http=http)

        return factory


@pytest.fixture
def box() -> FakeSandbox:
    sandbox = FakeSandbox()
    sandbox.setup(WORLD)
    return sandbox


def test_backend_name() -> None:
    assert FakeSandbox.backend == "fake"


def test_fresh_sandbox_has_base_layout() -> None:
    snapshot = FakeSandbox().snapshot()
    assert set(snapshot) == {"/home", HOME, "/tmp"}
    assert snapshot["/tmp"].mode == 0o1777


def test_unchanged_snapshot_is_the_cached_object(box: FakeSandbox) -> None:
    first = box.snapshot()
    box.exec("cat notes.txt | grep first; ls -la")
    box.read_file(f"{HOME}/notes.txt")
    assert box.snapshot() is first


def test_snapshot_after_reset_reuses_pristine_snapshot(box: FakeSandbox) -> None:
    pristine = box.snapshot()
    box.exec("rm notes.txt")
    assert box.snapshot() is not pristine
    box.reset()
    assert box.snapshot() is pristine


def test_every_mutation_bumps_version(box: FakeSandbox) -> None:
    operations = [
        lambda: box.write_file(f"{HOME}/a", b"1"),
        lambda: box.append_file(f"{HOME}/a", b"2"),
        lambda: box.make_dir(f"{HOME}/d"),
        lambda: box.touch(f"{HOME}/a"),
        lambda: box.chmod(f"{HOME}/a", 0o600),
        lambda: box.rename(f"{HOME}/a", f"{HOME}/b"),
        lambda: box.delete(f"{HOME}/b"),
        box.reset,
        lambda: box.setup([FileSpec("/x", b"x")]),
    ]
    for operation in operations:
        before = box.version
        operation()
        assert box.version > before


def test_reads_do_not_bump_version(box: FakeSandbox) -> None:
    before = box.version
    box.read_file(f"{HOME}/notes.txt")
    box.list_dir(HOME)
    box.stat(f"{HOME}/docs")
    box.exists(f"{HOME}/nope")
    box.snapshot()
    assert box.version == before


def test_refused_operations_do_not_bump_version(box: FakeSandbox) -> None:
    before = box.version
    with pytest.raises(PermissionError):
        box.write_file(f"{HOME}/readonly.txt", b"x")
    with pytest.raises(FileNotFoundError):
        box.delete(f"{HOME}/nope")
    assert box.version == before


def test_setup_with_same_specs_is_a_reset(box: FakeSandbox) -> None:
    box.exec("rm -r docs")
    box.setup(WORLD)
    assert box.read_file(f"{HOME}/docs/report.md").startswith(b"# Report")


def test_setup_rejects_relative_paths_and_keeps_previous_world(box: FakeSandbox) -> None:
    pristine = dict(box.snapshot())
    with pytest.raises(ValueError):
        box.setup([FileSpec("/ok.txt"), FileSpec("relative.txt")])
    assert dict(box.snapshot()) == pristine


def test_setup_file_under_file_is_refused() -> None:
    with pytest.raises(NotADirectoryError):
        FakeSandbox().setup([FileSpec("/a", b"file"), FileSpec("/a/b", b"child")])


def test_read_only_directory_spec_still_gets_its_children() -> None:
    box = FakeSandbox()
    box.setup([FileSpec("/srv", is_dir=True, mode=0o555), FileSpec("/srv/app.conf", b"x")])
    assert box.read_file("/srv/app.conf") == b"x"
    with pytest.raises(PermissionError):
        box.delete("/srv/app.conf")


def test_two_sandboxes_never_share_files() -> None:
    first, second = FakeSandbox(), FakeSandbox()
    first.write_file(f"{HOME}/mine.txt", b"1")
    assert not second.exists(f"{HOME}/mine.txt")


def test_closed_sandbox_raises_sandbox_error(box: FakeSandbox) -> None:
    box.close()
    with pytest.raises(SandboxError):
        box.read_file(f"{HOME}/notes.txt")
    with pytest.raises(SandboxError):
        box.exec("ls")


def test_recursive_delete_checks_the_whole_tree_first(box: FakeSandbox) -> None:
    box.exec("mkdir -p tree/locked && touch tree/a tree/locked/b && chmod 500 tree/locked")
    before = dict(box.snapshot())
    with pytest.raises(PermissionError):
        box.delete(f"{HOME}/tree", recursive=True)
    assert dict(box.snapshot()) == before


def test_rename_directory_into_itself_is_refused(box: FakeSandbox) -> None:
    with pytest.raises(OSError):
        box.rename(f"{HOME}/docs", f"{HOME}/docs/inner")
    assert box.exists(f"{HOME}/docs/report.md")


def test_disk_quota_bounds_what_the_agent_can_write() -> None:
    box = FakeSandbox(disk_quota=1000)
    box.write_file(f"{HOME}/a", b"x" * 600)
    with pytest.raises(OSError, match="No space left on device"):
        box.write_file(f"{HOME}/b", b"x" * 600)
    result = box.exec("cat a a > b")
    assert result.exit_code == 1
    assert result.stderr == "cat: write error: No space left on device\n"
    assert box.read_file(f"{HOME}/b") == b""
    box.exec("rm -f b")
    box.delete(f"{HOME}/a")
    box.write_file(f"{HOME}/c", b"x" * 900)  # deleting freed the space
    box.reset()
    box.write_file(f"{HOME}/d", b"x" * 1000)  # reset freed it too


MUTATIONS = [
    "rm -rf docs",
    "echo x >> notes.txt",
    "mkdir -p n/e/w && touch n/e/w/f",
    "chmod 700 .env",
    "mv empty renamed",
    "mv notes.txt docs/",
    "cp -r docs docs2",
    "rm .env; echo other > .env",
    "chmod u+w readonly.txt && echo y > readonly.txt",
    "rm -rf --no-preserve-root /",
    "find . -type f -delete",
    "cat notes.txt",
]


@settings(max_examples=60, deadline=None)
@given(commands=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=5))
def test_reset_undoes_any_sequence_of_changes(commands: list[str]) -> None:
    box = FakeSandbox()
    box.setup(WORLD)
    pristine = dict(box.snapshot())
    for command in commands:
        box.exec(command)
    box.reset()
    assert dict(box.snapshot()) == pristine
    assert box.read_file(f"{HOME}/notes.txt") == TEXT.encode()
    box.exec("; ".join(commands))  # the restored tree is fully usable again
    box.reset()
    assert dict(box.snapshot()) == pristine


def test_move_shows_as_delete_plus_create(box: FakeSandbox) -> None:
    before = box.snapshot()
    box.exec("mv notes.txt moved.txt")
    kinds = {change.path: change.kind for change in box.diff(before)}
    assert kinds == {f"{HOME}/notes.txt": "deleted", f"{HOME}/moved.txt": "created"}
