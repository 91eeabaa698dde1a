"""What a new run or a resume may find in a run folder (reading only)."""

import pytest

from train.failures import RunFolderDamaged
from train.run_dir import check_new_run_dir, load_saved_config, write_config


def test_a_folder_with_only_the_lock_and_the_log_is_free(tmp_path):
    # What a start that failed before training (e.g. out of memory at init) leaves behind.
    (tmp_path / ".lock").write_text("pid 1 on host\n")
    (tmp_path / "train.log").write_text("Traceback ...\n")
    assert check_new_run_dir(tmp_path) == tmp_path
    with pytest.raises(ValueError, match="nothing was trained .* drop --resume"):
        load_saved_config(tmp_path)


def test_a_run_without_checkpoint_names_the_resume_command(tmp_path):
    write_config(tmp_path / "config.json", {"model": {}})
    (tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp").mkdir(parents=True)
    with pytest.raises(ValueError, match=f"--resume --out {tmp_path}` starts it again from step 0"):
        check_new_run_dir(tmp_path)
    (tmp_path / "checkpoints" / "2").mkdir()
    with pytest.raises(ValueError, match="is not empty; pass --resume"):
        check_new_run_dir(tmp_path)
    assert not list(tmp_path.glob("*.partial"))  # the atomic write left no temporary file


def test_a_damaged_config_is_an_integrity_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model": {"width": 3')  # cut short
    with pytest.raises(RunFolderDamaged, match="cannot be read"):
        load_saved_config(tmp_path)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_new_run_dir(tmp_path / "config.json")
