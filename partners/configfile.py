"""Typed reading of TOML config files that reports every problem at once.

Operators fix config in one pass when the loader lists *all* problems, each naming the
file, the key path and what is expected (the buildbot/Holodeck practice), instead of
failing on the first one.
"""
from __future__ import annotations

import errno
import math
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ConfigError(ValueError):
    """One or more configuration problems; ``problems`` lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("configuration is invalid:\n  - " + "\n  - ".join(self.problems))


@dataclass
class Problems:
    """Collects problems while a whole config tree is loaded."""
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


_MISSING = object()


class Section:
    """A view of one TOML table that records problems instead of raising."""

    def __init__(self, data: dict, file: Path, path: str, problems: Problems):
        self.data, self.file, self.path, self.problems = data, file, path, problems
        self._used: set[str] = set()

    @classmethod
    def load(cls, file: Path, problems: Problems) -> "Section | None":
        """The file's top-level table, or None with the reason among ``problems``: whatever
        is at ``file`` (a directory, a symlink loop, undecodable bytes, TOML nested past the
        parser's recursion limit or with numbers too long to convert) is a problem, never a
        traceback."""
        data = None
        try:
            data = tomllib.loads(read_config_text(file))
        except ConfigFileUnreadable as exc:
            problems.add(str(file), str(exc))
        except tomllib.TOMLDecodeError as exc:
            problems.add(str(file), f"not valid TOML: {exc}")
        except RecursionError:
            problems.add(str(file), "not usable TOML: arrays or inline tables are nested too deeply "
                         "(more than a few hundred levels); flatten them")
        except ValueError as exc:       # e.g. an integer of more than 4300 digits
            problems.add(str(file), f"not usable TOML: {exc.args[0].split(';')[0] if exc.args else exc}; "
                         "write numbers with fewer digits")
        return None if data is None else cls(data, file, "", problems)

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        self.problems.add(f"{self.file} [{self._key(key)}]", message)

    def _get(self, key: str, kind: type | tuple, expected: str, default: Any) -> Any:
        self._used.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.error(key, f"missing; expected {expected}")
                return None
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.error(key, f"expected {expected}, got {value!r}")
            return None if default is _MISSING else default
        return value

    def str(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, str, "a string", default)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, bool, "true or false", default)

    def int(self, key: str, default: Any = _MISSING, *, minimum: int | None = None,
            maximum: int | None = None) -> Any:
        value = self._get(key, int, "an integer", default)
        if value is not None and minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
        if value is not None and maximum is not None and value > maximum:
            self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def float(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        value = self._get(key, (int, float), "a number", default)
        if value is not None and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:       # an integer beyond the float range
                self.error(key, f"{value} is too large; expected a number of seconds, days, ...")
                return None if default is _MISSING else default
            if not math.isfinite(value):
                # TOML has nan and inf; no interval, timeout or factor here means either.
                self.error(key, f"expected a finite number, got {value}")
                return None if default is _MISSING else default
            if minimum is not None and value < minimum:
                self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.str(key, default)
        if value is not None and value not in choices:
            self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
            return None
        return value

    def path_(self, key: str, default: Any = _MISSING, *, must_exist: bool = True) -> Path | None:
        """A file path, resolved against the folder of the config file.

        None (and a problem) when the value cannot name a usable path at all: a NUL
        character, a symlink loop, a name too long for the operating system. So callers
        can call ``exists()``, ``open()`` and friends on what they get without a traceback.
        """
        value = self.str(key, default)
        if value is None:
            return None
        path = self.resolve(key, value)
        if path is None:
            return None
        problem = path_problem(path)
        if problem == MISSING_PATH:
            if must_exist:
                self.error(key, f"file {path} does not exist")
        elif problem is not None:
            self.error(key, problem)
            return None
        return path

    def resolve(self, key: str, value: str) -> Path | None:
        """``value`` resolved against the folder of the config file; None (and a problem
        naming the key) when it cannot be."""
        if "\x00" in value:
            self.error(key, f"path {value!r} contains a NUL character; remove it")
            return None
        try:
            return (self.file.parent / value).resolve()
        except RuntimeError:                     # a symlink loop (Python < 3.13 raises this)
            self.error(key, f"path {value!r} runs into a symlink loop; point it at a real file")
            return None
        except OSError as exc:                   # a symlink loop (3.13+), a path the OS refuses
            self.error(key, f"path {value!r} cannot be resolved ({exc.strerror or exc}); "
                       "point it at an existing file")
            return None

    def str_list(self, key: str, default: Any = _MISSING) -> list[str] | None:
        value = self._get(key, list, "a list of strings", default)
        if value is not None and not all(isinstance(v, str) for v in value):
            self.error(key, f"expected a list of strings, got {value!r}")
            return None
        return value

    def table(self, key: str, *, required: bool = True) -> "Section | None":
        self._used.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.error(key, "missing table")
                return None
            value = {}
        if not isinstance(value, dict):
            self.error(key, "expected a table")
            # An optional table still yields a (empty) section so callers read defaults and
            # the load goes on collecting problems; a required one yields None.
            return None if required else Section({}, self.file, self._key(key), self.problems)
        return Section(value, self.file, self._key(key), self.problems)

    def tables(self, key: str) -> list["Section"]:
        """An array of tables (``[[key]]``)."""
        self._used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.error(key, "expected an array of tables ([[...]])")
            return []
        return [Section(v, self.file, f"{self._key(key)}[{i}]", self.problems) for i, v in enumerate(value)]

    def reject_unknown(self) -> None:
        """Unknown keys are usually typos; say so instead of silently ignoring them."""
        for key in self.data:
            if key not in self._used:
                self.error(key, "unknown key (typo?)")


class ConfigFileUnreadable(Exception):
    """A config file cannot be read as text; the message says why and what to do."""


MISSING_PATH = "missing"


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used, without following the operating system into a
    traceback: :data:`MISSING_PATH` when nothing is there (yet), a sentence for a path the
    system refuses to look at (too long, a symlink loop), None when something is there."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return MISSING_PATH
    except NotADirectoryError:
        return MISSING_PATH
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path} is a symlink loop; point it at a real file"
        return f"{path} cannot be used: {exc.strerror or exc}"
    except ValueError as exc:          # e.g. embedded NUL from a caller that did not check
        return f"{path!r} is not a usable path: {exc}"
    return None


def read_config_text(file: Path) -> str:
    """The UTF-8 text of a config file, or :class:`ConfigFileUnreadable` saying why not
    (missing, a directory, not a regular file, unreadable, not UTF-8). Checked with stat
    first so that a FIFO or device named as a config file is refused rather than read."""
    problem = path_problem(file)
    if problem == MISSING_PATH:
        raise ConfigFileUnreadable("file does not exist")
    if problem is not None:
        raise ConfigFileUnreadable(problem)
    mode = os.stat(file).st_mode
    if stat.S_ISDIR(mode):
        raise ConfigFileUnreadable("is a directory, expected a TOML file")
    if not stat.S_ISREG(mode):
        raise ConfigFileUnreadable("is not a regular file, expected a TOML file")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigFileUnreadable(f"cannot be read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileUnreadable(f"not valid TOML: not UTF-8 text (byte {exc.start} is "
                                   f"{raw[exc.start:exc.start + 1]!r}); save the file as UTF-8") from None


def check(section: Section, key: str, ok: bool, message: str) -> None:
    if not ok:
        section.error(key, message)


def load_or_collect(loader: Callable[[Problems], Any]) -> Any:
    problems = Problems()
    result = loader(problems)
    problems.raise_if_any()
    return result
