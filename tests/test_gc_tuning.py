"""The app's garbage-collector settings (services/gc_tuning.py), in a process of their own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import gc, json
import graph.router  # what the app has imported by the time it settles
from services.gc_tuning import YOUNG_THRESHOLD, settle_after_startup
before = gc.get_threshold()
settle_after_startup()
print(json.dumps({"frozen": gc.get_freeze_count(), "before": before, "after": gc.get_threshold(),
                  "young": YOUNG_THRESHOLD}))
"""


def test_settling_freezes_what_start_up_left_and_collects_the_young_less_often() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["frozen"] > 10_000  # the imports' modules, classes and functions
    assert seen["after"] == [seen["young"], *seen["before"][1:]]  # only the young threshold changes
