"""A built wheel carries the scenario library and finds it without the repository."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_scenario_library(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, text=True)
    [wheel] = wheels.glob("mosaic_gym-*.whl")
    # A venv that sees this interpreter's packages (the dependencies) but not the checkout.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
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
