"""A built wheel carries the scenario library and finds it without the repository."""

from __future__ import annotations

import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dependency_dirs() -> list[str]:
    """Where the running interpreter finds installed packages (its site directories).

    ``system_site_packages=True`` is not that: run from a virtual environment it means
    the *base* Python's site-packages, where a venv user's dependencies are not.
    """
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def make_venv_seeing_dependencies(env_dir: Path) -> Path:
    """A venv whose sys.path ends with this interpreter's site directories; its python.

    The directories go in through a ``.pth`` file as plain paths: ``.pth`` files inside
    them (an editable install's finder pointing at the checkout) are not run, so the
    venv imports the wheel, not the repository.
    """
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_outer_site.pth").write_text("\n".join(dependency_dirs()) + "\n")
    return python


@pytest.mark.slow
def test_wheel_ships_the_scenario_library(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, text=True)
    [wheel] = wheels.glob("mosaic_gym-*.whl")
    # A venv that sees this interpreter's packages (the dependencies) but not the checkout.
    env_dir = tmp_path / "venv"
    python = make_venv_seeing_dependencies(env_dir)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", "--no-deps", "--ignore-installed", str(wheel)],
                   check=True, capture_output=True, text=True)
    code = ("import mosaic_gym.scenario.library as lib; "
            "print(lib.mosaic_gym_file); print(lib.library_dirs()[0]); "
            "print(len(lib.load_library()))")
    code = code.replace("lib.mosaic_gym_file", "lib.__file__")
    result = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    module_file, library_dir, count = result.stdout.split()
    assert module_file.startswith(str(env_dir)), "imported the checkout, not the wheel"
    assert library_dir == str(env_dir / "share" / "mosaic-gym" / "scenarios")
    from mosaic_gym.scenario.library import load_library

    assert int(count) == len(load_library())
