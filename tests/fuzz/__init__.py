"""Fuzz targets for the inbound listener and the config loader (issue 8, item 15).

Each target is a function of one ``bytes`` input, so three runners share it: atheris
(coverage-guided, ``make fuzz``), hypothesis (short, deterministic, inside ``make test``)
and the corpus replay (every file under ``tests/fuzz/corpus/<target>/``, crash reproducers
included). See ``python -m tests.fuzz --help``.
"""
