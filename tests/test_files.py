"""Outputs are written whole or not at all, with ordinary permissions, never over an existing file."""
import os

import pytest

from cuesmith.engine.files import atomic_path, unused_path, write_json_atomic


def test_atomic_write_gets_the_permissions_open_would_give(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "result.json", {"a": 1})
    finally:
        os.umask(mask)
    # mkstemp alone would leave 0600, which other tools (a DAW run as another user, a web server) cannot read
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~0o022)


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "score.mid"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


def test_unused_path_never_names_an_existing_file(tmp_path):
    (tmp_path / "score.mid").write_bytes(b"mine")
    (tmp_path / "score-2.mid").write_bytes(b"mine too")
    assert unused_path(tmp_path / "score.mid") == tmp_path / "score-3.mid"
    assert unused_path(tmp_path / "new.mid") == tmp_path / "new.mid"


def test_a_confined_write_refuses_a_folder_swapped_for_a_symlink(tmp_path):
    from cuesmith.engine.errors import CuesmithError
    from cuesmith.engine.files import confine_writes

    root, outside = confine_writes(tmp_path / "root"), tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "job").symlink_to(outside, target_is_directory=True)
    for target in (root / "job" / "result.json", root / "job" / "stems" / "mix.wav"):
        with pytest.raises(CuesmithError, match="output root"):
            write_json_atomic(target, {"a": 1})
    assert list(outside.iterdir()) == []


def test_a_confined_write_stays_in_its_folder_when_the_name_is_swapped_mid_write(tmp_path):
    """The temporary is written through the folder's fd: a symlink swapped in under the folder's name
    while the writer runs cannot send the bytes outside the root."""
    from cuesmith.engine.files import confine_writes

    root, outside = confine_writes(tmp_path / "root"), tmp_path / "outside"
    (root / "job").mkdir(parents=True)
    outside.mkdir()
    with atomic_path(root / "job" / "score.mid") as tmp:
        (root / "job").rename(root / "moved")  # still inside the root
        (root / "job").symlink_to(outside, target_is_directory=True)
        tmp.write_bytes(b"MThd")
    assert list(outside.iterdir()) == []
    assert (root / "moved" / "score.mid").read_bytes() == b"MThd"


def test_a_confined_write_is_refused_when_its_folder_leaves_the_root(tmp_path):
    from cuesmith.engine.errors import CuesmithError
    from cuesmith.engine.files import confine_writes

    root, outside = confine_writes(tmp_path / "root"), tmp_path / "outside"
    (root / "job").mkdir(parents=True)
    with pytest.raises(CuesmithError, match="moved outside the output root"):
        with atomic_path(root / "job" / "score.mid") as tmp:
            tmp.write_bytes(b"MThd")
            (root / "job").rename(outside)
    assert list(outside.iterdir()) == []
