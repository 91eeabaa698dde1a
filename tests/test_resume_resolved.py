"""A resumed run keeps the meaning it was saved with, whatever the module defaults are now.

Oracle: the losses of a straight run. The first half of a run is trained, then the project's defaults are
changed (sigprop's γ_L and η, as a later edit of sigprop might) and the run is resumed: it must continue the
straight run bit for bit, because config.json holds the values it was built with, not nulls that mean
"today's default".
"""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # pytest runs with --import-mode=importlib
from train_harness import checkpoint_steps, command, losses, run  # noqa: E402

# Runs train.main with sigprop's defaults changed (as after an edit of sigprop/network.py).
CHANGED_DEFAULTS = ("import sys, sigprop; sigprop.DEFAULT_GAMMA_FINAL = 0.02; sigprop.DEFAULT_ETA = 0.2; "
                    "from train.main import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.slow
def test_resume_keeps_the_saved_meaning_when_a_default_changes(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(command(data, straight, "--steps", "4", "--checkpoint-every", "2"), cache)
    run(command(data, resumed, "--steps", "4", "--checkpoint-every", "2", "--stop-after", "2"), cache)
    assert checkpoint_steps(resumed) == [2]
    saved = json.loads((resumed / "config.json").read_text())["model"]
    assert saved["gamma_final"] == 0.2 and saved["init"] == "sigprop" and 0 < saved["tat_eta"] <= 0.5
    patched = [sys.executable, "-c", CHANGED_DEFAULTS, "--resume", "--out", str(resumed)]
    result = run(patched, cache)
    assert "predates" not in result.stderr  # nothing to resolve: the run was saved resolved
    assert json.loads((resumed / "config.json").read_text())["model"] == saved
    want, got = losses(straight), losses(resumed)
    assert sorted(got) == sorted(want) == [1, 2, 3, 4]
    assert [got[s] for s in (3, 4)] == [want[s] for s in (3, 4)]
