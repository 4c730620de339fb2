"""The restricted unpickler: Python 2 pickles of plain data read (both protocols), anything else refused unrun."""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import pytest

from tests.training.releases.release_fixtures import py2_pickle
from training.releases.plain_pickle import UnsafePickleError, load_plain_pickle

DATA = [{"sent": "man on the left", "sent_id": 7, "bbox": [1.5, 2.0, 30, 40], "ok": True, "none": None,
         "long": "x" * 300, "big": 70000, "non_ascii": "café"}]  # fmt: skip


@pytest.mark.parametrize("protocol", [0, 2])
def test_python2_pickles_of_plain_data_read_back(tmp_path: Path, protocol: int) -> None:
    data = py2_pickle(DATA, protocol)
    ascii_only = py2_pickle([{k: v for k, v in DATA[0].items() if k != "non_ascii"}], protocol)
    opcodes = {op.name for op, _, _ in pickletools.genops(ascii_only)}  # pickletools shows ASCII strings only
    assert ({"STRING"} if protocol == 0 else {"SHORT_BINSTRING", "BINSTRING"}) <= opcodes  # Python 2 str opcodes
    path = tmp_path / "refs(unc).p"
    path.write_bytes(data)
    assert load_plain_pickle(path) == DATA


def test_a_pickle_that_names_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.p"
    path.write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())  # protocol 0 GLOBAL + REDUCE
    with pytest.raises(UnsafePickleError, match=r"evil\.p: the pickle asks for os\.system"):
        load_plain_pickle(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(Path("/etc"), protocol=4))  # STACK_GLOBAL of a class, protocol 4
    with pytest.raises(UnsafePickleError, match="pathlib"):
        load_plain_pickle(path)


def test_unreadable_and_missing_pickles_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "cut.p").write_bytes(py2_pickle(DATA)[:40])
    with pytest.raises(ValueError, match=r"cut\.p is not a readable pickle"):
        load_plain_pickle(tmp_path / "cut.p")
    with pytest.raises(FileNotFoundError, match=r"absent\.p"):
        load_plain_pickle(tmp_path / "absent.p")
