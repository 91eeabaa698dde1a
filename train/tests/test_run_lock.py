"""The run-folder lock: exclusive, names its holder, and dies with it (kill -9 included)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from train.run_lock import LOCK_FILE, RunFolderBusy, RunLock

HOLDER = """
import sys, time
from train.run_lock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunFolderBusy, match=f"in use by process {os.getpid()} on "):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released on exit: free again
        pass
    assert (tmp_path / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on ")


def test_a_killed_holder_leaves_the_folder_free(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=f"process {holder.pid} "):
            RunLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        deadline = time.time() + 10
        while True:  # the kernel drops the lock when the process is gone
            try:
                RunLock(tmp_path).acquire().release()
                break
            except RunFolderBusy:
                assert time.time() < deadline, "the lock outlived its holder"
                time.sleep(0.05)
    finally:
        if holder.poll() is None:
            holder.kill()
