"""Typed reading of TOML config files that reports every problem at once.

Operators fix config in one pass when the loader lists *all* problems, each naming the
file, the key path and what is expected (the buildbot/Holodeck practice), instead of
failing on the first one.
"""
from __future__ import annotations

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
        try:
            with open(file, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            problems.add(str(file), "file does not exist")
            return None
        except tomllib.TOMLDecodeError as exc:
            problems.add(str(file), f"not valid TOML: {exc}")
            return None
        return cls(data, file, "", problems)

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

    def int(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        value = self._get(key, int, "an integer", default)
        if value is not None and minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def float(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        value = self._get(key, (int, float), "a number", default)
        if value is not None and not isinstance(value, bool):
            value = float(value)
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
        """A file path, resolved against the folder of the config file."""
        value = self.str(key, default)
        if value is None:
            return None
        path = (self.file.parent / value).resolve()
        if must_exist and not path.exists():
            self.error(key, f"file {path} does not exist")
        return path

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


def check(section: Section, key: str, ok: bool, message: str) -> None:
    if not ok:
        section.error(key, message)


def load_or_collect(loader: Callable[[Problems], Any]) -> Any:
    problems = Problems()
    result = loader(problems)
    problems.raise_if_any()
    return result
