"""utils/io.py's stage-folder manifests: a rerun never mixes files made with two set-ups; a folder lock keeps two
processes out of one mesh's folder."""
import json
import subprocess
import sys
import threading
import time

import pytest

from utils.errors import InputError
from utils.io import check_manifest, folder_lock


def test_a_manifest_is_written_once_and_then_guards_the_folder(tmp_path):
    path = tmp_path / "manifest.json"
    expected = {"seed": 0, "background": (1.0, 1.0, 1.0)}
    check_manifest(path, expected, has_data=False, remedy="use another folder")
    assert json.loads(path.read_text()) == {"seed": 0, "background": [1.0, 1.0, 1.0]}
    check_manifest(path, expected, has_data=True, remedy="use another folder")  # the same set-up: accepted
    with pytest.raises(InputError, match=r"made with seed = 0, not 1; use another folder"):
        check_manifest(path, {**expected, "seed": 1}, has_data=True, remedy="use another folder")
    newer = {**expected, "option": False}  # a setting added by a later version, at its default
    check_manifest(path, newer, has_data=True, remedy="r", defaults={"option": False})
    with pytest.raises(InputError, match="option = None, not True"):
        check_manifest(path, {**expected, "option": True}, has_data=True, remedy="r", defaults={"option": False})


def test_data_without_a_manifest_or_a_damaged_one_is_refused(tmp_path):
    with pytest.raises(InputError, match="without a manifest.json"):
        check_manifest(tmp_path / "manifest.json", {"seed": 0}, has_data=True, remedy="r")
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="is not a manifest"):
        check_manifest(tmp_path / "manifest.json", {"seed": 0}, has_data=True, remedy="r")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(InputError, match="could not read"):
        check_manifest(tmp_path / "manifest.json", {"seed": 0}, has_data=True, remedy="r")


def test_a_locked_folder_waits_for_its_holder_and_is_free_once_the_holder_dies(tmp_path):
    """Another process (a worker of a killed run) holds the lock: the second waits, saying so, and goes on the moment
    the holder is killed — the system frees the lock of a dead process, so a SIGKILL never leaves it stuck."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; handle = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(handle, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
         str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    killed_at = []

    def kill_the_holder():
        time.sleep(1.0)
        killed_at.append(time.monotonic())
        holder.kill()

    threading.Thread(target=kill_the_holder, daemon=True).start()
    said = []
    with folder_lock(tmp_path, said.append):
        entered_at = time.monotonic()
    holder.wait()
    assert said and said[0].startswith("waiting: another process works in")
    assert killed_at and entered_at >= killed_at[0]  # not before the holder was gone
    with folder_lock(tmp_path, said.append):  # free again after our release: no second wait
        pass
    assert len(said) == 1
