"""``import mosaic_gym`` stays light: no torch, transformers, docker or vllm."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_pulls_no_heavy_modules():
    code = ("import sys, json, mosaic_gym, gymnasium as gym; "
            "heavy = [m for m in ('torch', 'transformers', 'docker', 'vllm', 'trl', 'faker', "
            "'pyfakefs') if m in sys.modules]; "
            "print(json.dumps({'heavy': heavy, 'ids': [i for i in gym.registry "
            "if i.startswith('mosaic/')]}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["heavy"] == []
    assert set(report["ids"]) == {"mosaic/Injection-v0", "mosaic/Harmful-v0", "mosaic/Benign-v0",
                                  "mosaic/Privacy-v0", "mosaic/All-v0", "mosaic/Scenario-v0",
                                  "mosaic/AgentDojo-v0", "mosaic/BFCL-v0"}
