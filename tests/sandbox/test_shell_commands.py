"""Issue 9 item 9: sed, tar, gzip/gunzip/zcat, stat and ``cp /dev/null`` in the fake shell.

Expected outputs are busybox's (the docker image's tools) for the same commands; the
archive tests also check that the formats are the real ones, read and written by
Python's own ``tarfile`` and ``gzip`` (and by the host's ``tar``/``gzip`` when present).
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile

import pytest

from mosaic_gym.sandbox.base import HOME, FileSpec
from mosaic_gym.sandbox.fake import FakeSandbox

LINES = "one\ntwo\nthree\nfour\n"


@pytest.fixture
def box() -> FakeSandbox:
    sandbox = FakeSandbox()
    sandbox.setup([FileSpec(f"{HOME}/f", LINES.encode()),
                   FileSpec(f"{HOME}/notes.txt", b"keep me\n")])
    return sandbox


SED = [
    ("sed s/o/0/ f", "0ne\ntw0\nthree\nf0ur\n"),
    ("sed s/o/0/g notes.txt f | head -1", "keep me\n"),
    ("sed -n 2p f", "two\n"),
    ("sed 2d f", "one\nthree\nfour\n"),
    ("sed -n '/t/p' f", "two\nthree\n"),
    ("sed '$d' f", "one\ntwo\nthree\n"),
    ("sed -n '$p' f", "four\n"),
    ("sed 2,3d f", "one\nfour\n"),
    ("sed '/two/,/three/d' f", "one\nfour\n"),
    ("sed 2,+1d f", "one\nfour\n"),
    ("sed '/one/!d' f", "one\n"),
    ("sed -e s/one/1/ -e s/two/2/ f", "1\n2\nthree\nfour\n"),
    ("sed -E 's/(o+)/[\\1]/g' f", "[o]ne\ntw[o]\nthree\nf[o]ur\n"),
    ("sed 's/\\(t\\)\\(w\\)/\\2\\1/' f", "one\nwto\nthree\nfour\n"),
    ("sed s/O/x/I f | head -1", "xne\n"),
    ("sed s/e/E/2 f", "one\ntwo\nthreE\nfour\n"),
    ("sed 's/e/&&/g' notes.txt", "keeeep mee\n"),
    ("sed y/abc/xyz/ notes.txt", "keep me\n"),
    ("sed '1!G;h;$!d' f", "four\nthree\ntwo\none\n"),
    ("sed ':a;N;$!ba;s/\\n/,/g' f", "one,two,three,four\n"),
    ("sed '$!N;s/\\n/ /' f", "one two\nthree four\n"),
    ("sed = notes.txt", "1\nkeep me\n"),
    ("sed '2i\\\nhello' f | head -3", "one\nhello\ntwo\n"),
    ("sed '2a hi' f | head -3", "one\ntwo\nhi\n"),
    ("sed '3c\\\nthree!' f", "one\ntwo\nthree!\nfour\n"),
    ("sed 2q f", "one\ntwo\n"),
    ("sed -n '/two/{p;p}' f", "two\ntwo\n"),
    ("sed -n '2{n;p}' f", "three\n"),
    ("printf 'a\\nb' | sed s/b/c/", "a\nc"),
    ("echo aaa | sed 's/a*/x/g'; echo xab | sed 's/x*/-/g'", "x\n-a-b-\n"),
    ("echo /a/b | sed 's|/|_|g'", "_a_b\n"),
    ("sed 's/[[:space:]]/_/g' notes.txt", "keep_me\n"),
    ("sed -i s/one/ONE/ f; head -1 f", "ONE\n"),
    ("sed -i.bak s/one/ONE/ f; head -1 f f.bak", "==> f <==\nONE\n\n==> f.bak <==\none\n"),
    ("sed -n '/two/=' f", "2\n"),
]


@pytest.mark.parametrize(("command", "expected"), SED, ids=[c[0] for c in SED])
def test_sed(box: FakeSandbox, command: str, expected: str) -> None:
    result = box.exec(command)
    assert (result.exit_code, result.stdout) == (0, expected), result


@pytest.mark.parametrize(
    ("command", "message"),
    [("sed", "no script"), ("sed s/x/y f", "unterminated `s'"), ("sed k f", "unknown command"),
     ("sed 'b nowhere' f", "can't find label"), ("sed -i s/a/b/", "no input files"),
     ("sed 's/\\(a/b/' f", "invalid regular expression"), ("sed -z p f", "invalid option")],
)
def test_sed_bad_usage(box: FakeSandbox, command: str, message: str) -> None:
    result = box.exec(command)
    assert result.exit_code == 1 and message in result.stderr, result


def test_sed_missing_file_keeps_going(box: FakeSandbox) -> None:
    result = box.exec("sed -n 1p nope f")
    assert result.exit_code == 2 and result.stdout == "one\n" and "can't read nope" in (
        result.stderr)


def test_sed_in_place_is_a_recorded_change(box: FakeSandbox) -> None:
    before = box.snapshot()
    box.exec("sed -i s/keep/lose/ notes.txt")
    assert [(c.path, c.kind) for c in box.diff(before)] == [(f"{HOME}/notes.txt", "modified")]
    assert box.read_file(f"{HOME}/notes.txt") == b"lose me\n"


# -- tar and gzip ------------------------------------------------------------------------
ARCHIVES = [
    ("tar -cf a.tar notes.txt f && tar -tf a.tar", "notes.txt\nf\n"),
    ("mkdir d; echo x > d/y; tar -cf - d | tar -tf -", "d/\nd/y\n"),
    ("mkdir d; echo x > d/y; tar -cvf a.tar d", "d/\nd/y\n"),
    ("tar czf a.tgz notes.txt && rm notes.txt && tar xzf a.tgz && cat notes.txt", "keep me\n"),
    ("tar -czf a.tgz f && rm f && tar -xzf a.tgz && wc -l < f", "4\n"),
    ("mkdir out; tar -cf a.tar f; tar -xf a.tar -C out; head -1 out/f", "one\n"),
    ("tar -cf a.tar f; tar -xOf a.tar f | head -2", "one\ntwo\n"),
    ("mkdir -p d/e; echo x > d/e/y; tar -cf a.tar d; rm -r d; tar -xf a.tar "
     "--strip-components 1; cat e/y", "x\n"),
    ("gzip -c notes.txt | gunzip -c", "keep me\n"),
    ("gzip notes.txt; ls; zcat notes.txt.gz; gunzip notes.txt.gz; cat notes.txt; ls",
     "f\nnotes.txt.gz\nkeep me\nkeep me\nf\nnotes.txt\n"),
    ("gzip -k notes.txt; ls", "f\nnotes.txt\nnotes.txt.gz\n"),
    ("echo hi | gzip | gzip -d", "hi\n"),
    ("gzip -c notes.txt > n.gz; cat n.gz n.gz | zcat", "keep me\nkeep me\n"),
]


@pytest.mark.parametrize(("command", "expected"), ARCHIVES, ids=[c[0] for c in ARCHIVES])
def test_archives(box: FakeSandbox, command: str, expected: str) -> None:
    result = box.exec(command)
    assert (result.exit_code, result.stdout) == (0, expected), result


@pytest.mark.parametrize(
    ("command", "message"),
    [("tar -xf nope", "nope"), ("tar tf", "requires an argument"), ("tar -f a.tar", "-ctx"),
     ("tar -cf a.tar", "empty archive"), ("tar -cf a.tar nope", "nope"),
     ("tar -tf notes.txt", "does not look like a tar archive"),
     ("tar -czf a.tgz f; tar -tf a.tgz", "use -z"),
     ("gzip -d notes.txt", "unknown suffix"), ("zcat notes.txt", "not in gzip format"),
     ("gzip -c nope", "nope"), ("gzip --bogus", "unrecognized option")],
)
def test_archive_bad_usage(box: FakeSandbox, command: str, message: str) -> None:
    result = box.exec(command)
    assert result.exit_code == 1 and message in result.stderr, result


def test_tar_made_in_the_fake_is_a_real_archive(box: FakeSandbox) -> None:
    box.exec("mkdir -p d/e && echo x > d/e/y && chmod 600 d/e/y && tar -czf a.tgz d f")
    data = box.read_file(f"{HOME}/a.tgz")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert sorted(members) == ["d", "d/e", "d/e/y", "f"]
        assert members["d/e/y"].mode == 0o600 and members["d"].isdir()
        handle = archive.extractfile("f")
        assert handle is not None and handle.read() == LINES.encode()


def test_tar_made_elsewhere_extracts_in_the_fake(box: FakeSandbox) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in [("pkg/a.txt", b"alpha\n"), ("/abs/b.txt", b"beta\n")]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o640
            archive.addfile(info, io.BytesIO(body))
        evil = tarfile.TarInfo("../escape")
        archive.addfile(evil, io.BytesIO(b""))
    box.write_file(f"{HOME}/x.tgz", buffer.getvalue())
    before = box.snapshot()
    result = box.exec("tar -xzf x.tgz")
    assert result.exit_code == 1 and "'..'" in result.stderr, result
    assert box.read_file(f"{HOME}/pkg/a.txt") == b"alpha\n"
    assert box.read_file(f"{HOME}/abs/b.txt") == b"beta\n"
    assert box.stat(f"{HOME}/pkg/a.txt").mode & 0o777 == 0o640
    created = {c.path for c in box.diff(before) if c.kind == "created"}
    assert {f"{HOME}/pkg/a.txt", f"{HOME}/abs/b.txt"} <= created
    assert not box.exists("/home/escape")


def test_gzip_is_the_real_format(box: FakeSandbox) -> None:
    box.exec("gzip -k f")
    assert gzip.decompress(box.read_file(f"{HOME}/f.gz")) == LINES.encode()
    box.write_file(f"{HOME}/y.gz", gzip.compress(b"from python\n"))
    assert box.exec("zcat y.gz").stdout == "from python\n"


@pytest.mark.skipif(shutil.which("tar") is None, reason="no host tar")
def test_host_tar_reads_the_fake_archive(box: FakeSandbox, tmp_path) -> None:
    box.exec("mkdir d && echo x > d/y && tar -czf a.tgz d notes.txt")
    (tmp_path / "a.tgz").write_bytes(box.read_file(f"{HOME}/a.tgz"))
    listed = subprocess.run(["tar", "-tzf", "a.tgz"], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    assert listed.stdout.split() == ["d/", "d/y", "notes.txt"]


# -- stat and cp /dev/null ---------------------------------------------------------------
STAT = [
    ("stat -c '%n|%s|%a|%A|%F|%h|%b|%B|%o|%U|%u' notes.txt",
     "notes.txt|8|644|-rw-r--r--|regular file|1|8|512|4096|user|1000\n"),
    (": > e; stat -c %F e", "regular empty file\n"),
    ("mkdir -p d/x; stat -c '%n %h %F %s %a' d", "d 3 directory 4096 755\n"),
    ("chmod 600 f; stat -c '%a %A' f notes.txt", "600 -rw-------\n644 -rw-r--r--\n"),
    ("stat notes.txt | head -2 | tail -1 | tr -s ' \\t' ' '",
     " Size: 8 Blocks: 8 IO Block: 4096 regular file\n"),
    ("cp /dev/null notes.txt; wc -c < notes.txt", "0\n"),
    ("cp /dev/null new; stat -c %s new", "0\n"),
    ("cp notes.txt /dev/null; echo ok", "ok\n"),
]


@pytest.mark.parametrize(("command", "expected"), STAT, ids=[c[0] for c in STAT])
def test_stat_and_cp_devices(box: FakeSandbox, command: str, expected: str) -> None:
    result = box.exec(command)
    assert (result.exit_code, result.stdout) == (0, expected), result


def test_stat_missing_file(box: FakeSandbox) -> None:
    result = box.exec("stat -c %s nope notes.txt")
    assert (result.exit_code, result.stdout) == (1, "8\n")
    assert "can't stat 'nope'" in result.stderr


def test_cp_dev_null_is_a_recorded_truncation(box: FakeSandbox) -> None:
    before = box.snapshot()
    box.exec("cp /dev/null notes.txt")
    assert [(c.path, c.kind) for c in box.diff(before)] == [(f"{HOME}/notes.txt", "modified")]
