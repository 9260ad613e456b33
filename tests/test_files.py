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
