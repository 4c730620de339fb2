"""Pickles of plain data (dicts, lists, tuples, strings, numbers), read without ever running the file's code.

A pickle names the callables that rebuild its objects (``GLOBAL`` / ``STACK_GLOBAL`` opcodes); ``pickle.load`` looks
them up and calls them, so a crafted file runs whatever it names. :func:`load_plain_pickle` refuses every such
lookup: only the opcodes of plain containers and scalars remain, which build data and nothing else. Python 2 ``str``
values (the ``STRING`` / ``BINSTRING`` / ``SHORT_BINSTRING`` opcodes of the REFER releases) are decoded as UTF-8, or
as Latin-1 when they are not UTF-8.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

__all__ = ["UnsafePickleError", "load_plain_pickle"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks to build something other than plain data; nothing of it was executed."""


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler for which no global (class, function, module attribute) exists."""

    def __init__(self, file: Any, path: Path, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"{self.path}: the pickle asks for {module}.{name}, which plain data never needs; refused (nothing was "
            "run). Only dicts, lists, tuples, strings and numbers are read."
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.path}: the pickle refers to an external object ({pid!r}); refused")


def load_plain_pickle(path: str | os.PathLike[str]) -> Any:
    """The plain data in the pickle at `path`; UnsafePickleError if it asks for any code, ValueError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pickle file not found: {path}")
    for encoding in ("utf-8", "latin-1"):
        try:
            with path.open("rb") as handle:
                return _PlainUnpickler(handle, path, encoding).load()
        except UnicodeDecodeError:
            continue  # a Python 2 string that is not UTF-8: Latin-1 decodes every byte
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError) as err:
            raise ValueError(f"{path} is not a readable pickle: {type(err).__name__}: {err}") from err
    raise ValueError(f"{path}: cannot decode the pickle's strings")  # pragma: no cover - Latin-1 decodes all bytes
