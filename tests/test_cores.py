"""Free cores: this process's own work is not another process's load; a busy other process is."""
import subprocess
import sys
import time

import pytest

from cuesmith.engine import cores

pytestmark = pytest.mark.skipif(cores.sample() is None, reason="no /proc/stat")


def test_this_processs_own_work_leaves_its_cores_free():
    cores.free_cores()  # the window starts here
    began = time.monotonic()
    while time.monotonic() - began < 0.5:  # one core busy, in this process
        pass
    assert cores.free_cores() >= cores.core_count() - 0.75


def test_a_busy_other_process_takes_a_core():
    cores.free_cores()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.8)
        assert cores.free_cores() <= cores.core_count() - 0.5
    finally:
        busy.kill()
        busy.wait()


def test_calls_close_together_share_one_window():
    cores.free_cores()
    time.sleep(0.3)
    first, second = cores.free_cores(), cores.free_cores()  # the second is within MIN_WINDOW_S of the first
    assert abs(first - second) < 0.5 and 0 <= second <= cores.core_count()
