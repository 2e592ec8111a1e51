"""``[evidence]`` settings, read from the raw TOML beside the gateway config.

``gateway/config.py`` rejects unknown tables, so until ``GatewayConfig`` learns an
``[evidence]`` table the settings may also live in ``evidence.toml`` next to
``gateway.toml`` (same ``[evidence]`` table; it wins over gateway.toml). Keys:

    tsa_url = "https://tsa.example/tsr"     # RFC 3161 time-stamp authority
    tsa_certs = ["certs/tsa-ca.crt"]         # trust anchors for the TSA's signing certificate
    ca_certs = ["certs/ca/ca.crt"]           # CA certificates put in exported bundles
    retention_days = 3650                    # default for `swgw evidence purge`

Relative paths are relative to the file that names them.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from partners.configfile import ConfigError

SIDE_FILE = "evidence.toml"


@dataclass(frozen=True)
class EvidenceSettings:
    tsa_url: str | None = None
    tsa_certs: tuple[Path, ...] = ()
    ca_certs: tuple[Path, ...] = ()
    retention_days: float | None = None


def _table(file: Path) -> dict:
    if not file.is_file():
        return {}
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML ({exc})"]) from None
    table = data.get("evidence", {})
    if not isinstance(table, dict):
        raise ConfigError([f"{file}: [evidence] must be a table"])
    return {key: (value, file) for key, value in table.items()}


def load_evidence_settings(config_file: str | Path) -> EvidenceSettings:
    """Merge ``[evidence]`` from gateway.toml and evidence.toml; report every bad key at once."""
    config_file = Path(config_file).resolve()
    merged = {**_table(config_file), **_table(config_file.parent / SIDE_FILE)}
    problems: list[str] = []

    def paths(key: str) -> tuple[Path, ...]:
        if key not in merged:
            return ()
        value, file = merged[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{file}: evidence.{key}: expected a list of file paths")
            return ()
        out = tuple((file.parent / v).resolve() for v in value)
        problems.extend(f"{file}: evidence.{key}: {p} does not exist" for p in out if not p.is_file())
        return out

    tsa_url = merged.get("tsa_url", (None, None))[0]
    if tsa_url is not None and (not isinstance(tsa_url, str) or not tsa_url.startswith(("http://", "https://"))):
        problems.append(f"{merged['tsa_url'][1]}: evidence.tsa_url: expected an http(s) URL")
    retention = merged.get("retention_days", (None, None))[0]
    if retention is not None and (isinstance(retention, bool) or not isinstance(retention, (int, float))
                                  or retention < 0):
        problems.append(f"{merged['retention_days'][1]}: evidence.retention_days: expected a number of days >= 0")
    unknown = set(merged) - {"tsa_url", "tsa_certs", "ca_certs", "retention_days"}
    problems.extend(f"{merged[k][1]}: evidence.{k}: unknown key (typo?)" for k in sorted(unknown))
    settings = EvidenceSettings(tsa_url=tsa_url, tsa_certs=paths("tsa_certs"), ca_certs=paths("ca_certs"),
                                retention_days=float(retention) if retention is not None else None)
    if problems:
        raise ConfigError(problems)
    return settings
