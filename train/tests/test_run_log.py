"""`train.run_log.RunLog`: library error output lands in train.log, also after the block ends.

Orbax writes a checkpoint's arrays in parallel asyncio tasks; when one write fails (a full disk),
the others' exceptions are never retrieved, and asyncio reports each one whenever its task is
garbage-collected, which may be after the run has failed and the trainer has printed its one line.
"""

import asyncio
import gc
import logging
import sys

import pytest

from train.run_log import LOG_FILE, RunLog


def _abandoned_failed_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task:
    async def fails():
        raise OSError(28, "No space left on device (late write)")

    task = loop.create_task(fails())
    loop.run_until_complete(asyncio.sleep(0))  # the task runs and fails; nobody awaits it
    return task


@pytest.fixture
def root_stream_handler(capfd):
    """A root stream handler on the real stderr, as absl installs one once it is imported."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_a_failed_task_collected_after_a_failed_run_is_reported_in_the_log(tmp_path, root_stream_handler, capfd):
    loop = asyncio.new_event_loop()
    tasks = []
    with pytest.raises(OSError):
        with RunLog(tmp_path, header="python -m train.main"):
            tasks.append(_abandoned_failed_task(loop))
            raise OSError(28, "No space left on device")
    print("error: out of disk space", file=sys.stderr)  # the trainer's one line
    tasks.clear()  # the library drops its last reference only now
    gc.collect()
    loop.close()
    err = capfd.readouterr().err
    assert err.strip().splitlines() == ["error: out of disk space"], err
    log = (tmp_path / LOG_FILE).read_text()
    assert "Task exception was never retrieved" in log and "late write" in log


def test_after_a_successful_run_the_console_gets_library_errors_again(tmp_path, root_stream_handler, capfd):
    with RunLog(tmp_path, header="python -m train.main"):
        logging.getLogger("asyncio").error("inside the run")
    logging.getLogger("asyncio").error("after the run")
    err = capfd.readouterr().err
    assert "after the run" in err and "inside the run" not in err
    assert "inside the run" in (tmp_path / LOG_FILE).read_text()


def test_a_new_run_log_takes_back_the_late_route(tmp_path, root_stream_handler, capfd):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with pytest.raises(RuntimeError):
        with RunLog(first):
            raise RuntimeError("failed run")
    with RunLog(second):
        logging.getLogger("asyncio").error("second run's line")
    assert "second run's line" in (second / LOG_FILE).read_text()
    assert "second run's line" not in (first / LOG_FILE).read_text()
    logging.getLogger("asyncio").error("after both")
    assert "after both" in capfd.readouterr().err
