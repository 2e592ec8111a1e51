"""Opening the database named by ``[database] url``, with one clear line when it cannot be used.

SQLAlchemy reports a missing driver, a server that is down or a refused password as a chain
of exceptions (32 to 126 lines of traceback from the CLI); an operator needs the URL (never
its password), what is wrong and what to do. Every opener (``swgw serve``, each CLI command,
``swgw checkconfig``) goes through :func:`open_engine`, which also connects once, so a
problem shows at start rather than at the first message.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

#: What to install for each database family the gateway supports besides SQLite.
DRIVERS = {"postgresql": ("psycopg", "pip install 'swgw[postgresql]' (psycopg 3; in a checkout: "
                                      "pip install -e '.[postgresql]')")}


class DatabaseUnavailable(Exception):
    """The configured database cannot be used; the message names the URL and the fix."""


def describe_url(url: str) -> str:
    """The URL as an operator may see it: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """The engine for ``url`` (not connected yet); a problem with the URL or the driver is
    a :class:`DatabaseUnavailable`."""
    shown = describe_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(f"[database] url {url!r} is not a database URL; write it as "
                                  "sqlite:///path/to/gateway.db or postgresql+psycopg://user:password@host:5432/dbname") from None
    family = parsed.get_backend_name()
    try:
        if family == "sqlite":
            path = parsed.database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # A server that does not answer (a dropped packet, not a refusal) must not hang a
        # command or the daemon's start: libpq waits forever by default.
        args = {"connect_timeout": 10} if family == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, connect_args=args)
    except NoSuchModuleError:
        raise DatabaseUnavailable(f"database {shown}: SQLAlchemy knows no driver {parsed.drivername!r}; "
                                  "use sqlite:///... or postgresql+psycopg://...") from None
    except ImportError as exc:
        module, fix = DRIVERS.get(family, (exc.name or "its driver", f"install the Python driver for {family}"))
        missing = (exc.name or module).split(".")[0]
        if missing != module and family in DRIVERS:
            fix = f"the supported driver is {module}: write the URL as {family}+{module}://... and {fix}"
        raise DatabaseUnavailable(f"database {shown}: the driver {missing!r} is not installed; {fix}") from None


def probe(engine: Engine) -> None:
    """Connect once and run ``SELECT 1``; a failure is a :class:`DatabaseUnavailable`."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise DatabaseUnavailable(explain(engine.url.render_as_string(hide_password=True), exc)) from None


def open_engine(url: str) -> Engine:
    """:func:`make_engine` and :func:`probe`: a usable engine, or one clear line."""
    engine = make_engine(url)
    try:
        probe(engine)
    except DatabaseUnavailable:
        engine.dispose()
        raise
    return engine


def check(url: str) -> str:
    """For ``swgw checkconfig``: connect as the daemon would, without creating anything; what
    was found, as a phrase. A SQLite file that does not exist yet is created at the first
    start, so only its directory is checked."""
    engine = make_engine(url) if make_url_or_none(url, "sqlite") is None else None
    if engine is None:
        path = Path(make_url(url).database or "")
        if not path.exists():
            parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("/"))
            if not os.access(parent, os.W_OK):
                raise DatabaseUnavailable(f"cannot use the database {describe_url(url)}: {parent} is not "
                                          "writable; give the gateway's user write access or change [database] url")
            return f"database {describe_url(url)} (created at the first start)"
        engine = make_engine(url)
    try:
        probe(engine)
    finally:
        engine.dispose()
    return f"database {describe_url(url)} reachable"


def make_url_or_none(url: str, family: str):
    """The parsed URL when it is of ``family`` (``sqlite``, ``postgresql``), else None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    return parsed if parsed.get_backend_name() == family else None


def explain(shown: str, exc: DBAPIError) -> str:
    """What a connection failure means, from the driver's own message, and the fix."""
    detail = " ".join(str(exc.orig).split()) if exc.orig is not None else str(exc)
    low = detail.lower()
    if "password authentication failed" in low or "no password supplied" in low \
            or "authentication failed" in low:
        fix = "check the user name and password in [database] url"
    elif "does not exist" in low and "database" in low:
        fix = "create the database (createdb, or CREATE DATABASE as its owner) or correct its name in [database] url"
    elif "role" in low and "does not exist" in low:
        fix = "create the user (CREATE ROLE ... LOGIN PASSWORD ...) or correct it in [database] url"
    elif any(s in low for s in ("connection refused", "could not connect", "timeout", "timed out",
                                "no route to host", "name or service not known", "could not translate host",
                                "connection failed")):
        fix = "check that the database server is running and reachable at the host and port of [database] url"
    elif "unable to open database file" in low:
        fix = "check that the directory of the SQLite file exists and is writable by the gateway's user"
    else:
        fix = "check [database] url and the database server's log"
    return f"cannot use the database {shown}: {detail}; {fix}"
