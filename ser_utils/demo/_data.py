"""Loader of the generator's tables: sentences, prosody, voices, label statistics.

The tables live in ``ser_utils/demo/data/*.json`` (package data) so that the wording and the
numbers can be read and edited without touching the code. Each file is parsed once per process.
JSON has no tuples, no integer keys and no sets; the modules that bind a table convert it back
where the code relies on those types. JSON keeps the order of the keys, which matters: the
probability tables are drawn from in that order.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def load_table(name: str) -> dict:
    """The tables of ``data/<name>.json``, without its ``_about`` note (read-only: shared).

    Parameters
    ----------
    name : str
        ``"text"``, ``"voices"`` or ``"labels"``.

    Returns
    -------
    dict
        Table name -> table, in the order of the file.
    """
    path = resources.files(__package__) / "data" / f"{name}.json"
    tables = json.loads(path.read_text(encoding="utf-8"))
    tables.pop("_about", None)
    return tables
