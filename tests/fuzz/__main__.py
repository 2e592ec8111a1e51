"""Coverage-guided fuzzing with atheris: ``python -m tests.fuzz TARGET [libFuzzer options]``.

``make fuzz`` runs every target for ``FUZZ_SECONDS`` each. New interesting inputs go to
``var/fuzz/<target>/`` (the seed corpus under ``tests/fuzz/corpus/<target>/`` is only read),
crashes to ``var/fuzz/crashes/``. To keep a crash as a regression test, fix it, then copy
the reproducer into ``tests/fuzz/corpus/<target>/`` under a name that says what it found:
``tests/test_fuzz_*.py`` replays every file there.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# As tests.fuzz.targets.TARGETS, which cannot be imported before the instrumentation starts.
TARGETS = ("mime", "header", "wssec", "inbound", "config")
ROOT = Path(__file__).resolve().parents[2]


def _relauncher(name: str) -> str:
    """An executable that starts this target again: libFuzzer runs ``argv[0]`` as a child for
    ``-merge=1`` and ``-fork``, and ``python -m`` leaves a non-executable ``__main__.py`` there."""
    script = Path(tempfile.mkdtemp(prefix="swgw-fuzz-")) / f"fuzz-{name}"
    script.write_text(f'#!/bin/sh\ncd "{ROOT}" && exec "{sys.executable}" -m tests.fuzz {name} "$@"\n')
    script.chmod(0o700)
    return str(script)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dirs]\n"
                 "e.g. python -m tests.fuzz mime -max_total_time=120 var/fuzz/mime tests/fuzz/corpus/mime")
    name, rest = argv[1], argv[2:]
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: `.venv/bin/pip install atheris` (Linux, CPython 3.11+)")
    # Instrument our own code only (not lxml, cryptography or SQLAlchemy): that is where the
    # coverage feedback has to lead the fuzzer.
    with atheris.instrument_imports(include=["gateway", "crypto", "partners"]):
        from tests.fuzz.targets import make_target
        one_input, _close = make_target(name, Path(tempfile.mkdtemp(prefix=f"swgw-fuzz-{name}-")))
    # Our inputs are decision streams: a few hundred bytes drive many mutations, and
    # libFuzzer's default of growing the length from 4 bytes wastes the first minutes.
    if not any(arg.startswith("-max_len=") for arg in rest):
        rest = ["-max_len=512", *rest]
    if not any(arg.startswith("-len_control=") for arg in rest):
        rest = ["-len_control=0", *rest]
    atheris.Setup([_relauncher(name), *rest], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
