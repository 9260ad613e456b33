"""`needs_data`: skip a test, saying why, where POP909 is not beside the repository."""
import pytest

from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.music import pop909


def have_data() -> bool:
    try:
        return (pop909.data_root() / "701" / "701.mid").is_file()
    except CuesmithError:
        return False


needs_data = pytest.mark.skipif(not have_data(), reason="POP909 data not found (set CUESMITH_POP909)")
