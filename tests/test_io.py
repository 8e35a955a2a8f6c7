"""utils/io.py's stage-folder manifests: a rerun never mixes files made with two set-ups."""
import json

import pytest

from utils.errors import InputError
from utils.io import check_manifest


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
