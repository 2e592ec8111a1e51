"""The AEO registry tables and the two operations on them: apply a received list, look up an operator.

The tables are created by Alembic revision 0003 (``gateway/store/migrations/versions/0003_aeo.py``);
these models are the ORM view and must match it. Applying a list is one transaction, so a
crash leaves either the old registry or the new one, never a mix; re-applying a list already
applied (same issuer and ListID, e.g. a redelivered message) changes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import JSON, Date, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from gateway.aeo.model import (DELETE, DELTA, FULL, AeoList, Address, Operator, Suspension, status_on)
from gateway.store.models import UTCDateTime


class AeoBase(DeclarativeBase):
    pass


class AeoListRow(AeoBase):
    __tablename__ = "aeo_lists"
    __table_args__ = (UniqueConstraint("issuing_country", "list_id", name="uq_aeo_lists_country_list"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuing_country: Mapped[str] = mapped_column(String(2))
    list_id: Mapped[str] = mapped_column(String(255))
    list_type: Mapped[str] = mapped_column(String(8))
    based_on: Mapped[str | None] = mapped_column(String(255))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(255))
    operators: Mapped[int] = mapped_column(Integer)


class AeoOperatorRow(AeoBase):
    __tablename__ = "aeo_operators"
    __table_args__ = (UniqueConstraint("issuing_country", "operator_id", name="uq_aeo_operators_country_operator"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuing_country: Mapped[str] = mapped_column(String(2))
    operator_id: Mapped[str] = mapped_column(String(128), index=True)
    scheme: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[dict] = mapped_column(JSON)
    certificate_type: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    suspensions: Mapped[list] = mapped_column(JSON)
    list_id: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    def to_operator(self) -> Operator:
        return Operator(self.operator_id, self.scheme, self.name, Address(**self.address), self.certificate_type,
                        self.status, self.valid_from, self.valid_to,
                        tuple(Suspension(dt.date.fromisoformat(s["start"]),
                                         dt.date.fromisoformat(s["end"]) if s.get("end") else None,
                                         s.get("reason")) for s in self.suspensions))


class AeoListRejected(ValueError):
    """The list cannot be applied (e.g. a delta on a base we never applied); nothing was changed."""


@dataclass(frozen=True)
class ApplyResult:
    list_id: str
    issuing_country: str
    list_type: str
    upserted: int
    deleted: int
    already_applied: bool = False

    def summary(self) -> str:
        if self.already_applied:
            return f"AEO list {self.list_id} from {self.issuing_country} was already applied; nothing changed"
        return (f"AEO {self.list_type.lower()} list {self.list_id} from {self.issuing_country}: "
                f"{self.upserted} operator(s) added or updated, {self.deleted} removed")


@dataclass(frozen=True)
class LookupResult:
    operator_id: str
    on: dt.date
    status: str                       # valid, suspended, revoked, expired, not-yet-valid, unknown
    issuing_country: str | None = None
    record: Operator | None = None
    list_id: str | None = None

    def as_dict(self) -> dict:
        rec = self.record
        return {"operator_id": self.operator_id, "on": self.on.isoformat(), "status": self.status,
                "issuing_country": self.issuing_country, "list_id": self.list_id,
                "record": None if rec is None else {
                    **{k: v for k, v in dataclasses.asdict(rec).items() if k not in ("address", "suspensions")},
                    "valid_from": rec.valid_from.isoformat(),
                    "valid_to": rec.valid_to.isoformat() if rec.valid_to else None,
                    "address": dataclasses.asdict(rec.address),
                    "suspensions": [{"start": s.start.isoformat(), "end": s.end.isoformat() if s.end else None,
                                     "reason": s.reason} for s in rec.suspensions]}}


def _row_values(op: Operator, country: str, list_id: str, now: dt.datetime) -> dict:
    return dict(issuing_country=country, operator_id=op.operator_id, scheme=op.scheme, name=op.name,
                address=dataclasses.asdict(op.address), certificate_type=op.certificate_type, status=op.status,
                valid_from=op.valid_from, valid_to=op.valid_to,
                suspensions=[{"start": s.start.isoformat(), "end": s.end.isoformat() if s.end else None,
                              "reason": s.reason} for s in op.suspensions],
                list_id=list_id, updated_at=now)


class AeoRegistry:
    """Blocking; call off the reactor thread like MessageStore (it can share its engine)."""

    def __init__(self, engine: Engine):
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def apply(self, aeo_list: AeoList, message_id: str | None = None) -> ApplyResult:
        """Apply a list in a transaction of its own (the CLI's import)."""
        with self.sessions.begin() as s:
            return self.apply_in(s, aeo_list, message_id)

    @staticmethod
    def apply_in(s: Session, aeo_list: AeoList, message_id: str | None = None) -> ApplyResult:
        """Apply a list inside the caller's transaction: a list received in a message commits
        with that message (one unit of work), or not at all."""
        now = dt.datetime.now(dt.timezone.utc)
        country = aeo_list.issuing_country
        if s.scalar(select(AeoListRow.id).where(AeoListRow.issuing_country == country,
                                                AeoListRow.list_id == aeo_list.list_id)) is not None:
            return ApplyResult(aeo_list.list_id, country, aeo_list.list_type, 0, 0, already_applied=True)
        upserted = deleted = 0
        if aeo_list.list_type == FULL:
            before = set(s.scalars(select(AeoOperatorRow.operator_id)
                                   .where(AeoOperatorRow.issuing_country == country)).all())
            s.execute(delete(AeoOperatorRow).where(AeoOperatorRow.issuing_country == country))
            deleted = len(before - {c.operator_id for c in aeo_list.changes})
        elif aeo_list.list_type == DELTA:
            last = s.scalars(select(AeoListRow).where(AeoListRow.issuing_country == country)
                             .order_by(AeoListRow.id.desc()).limit(1)).first()
            if last is None:
                raise AeoListRejected(f"delta {aeo_list.list_id} from {country} arrived before any full list; "
                                      f"ask {country} for a full list")
            if aeo_list.based_on and aeo_list.based_on != last.list_id:
                raise AeoListRejected(f"delta {aeo_list.list_id} from {country} is based on "
                                      f"{aeo_list.based_on}, but the last list applied is {last.list_id}; "
                                      "a list in between is missing, ask for a full list")
        for change in aeo_list.changes:
            existing = s.scalars(select(AeoOperatorRow).where(AeoOperatorRow.issuing_country == country,
                                                              AeoOperatorRow.operator_id == change.operator_id)).first()
            if change.action == DELETE:
                if existing is not None:
                    s.delete(existing)
                    deleted += 1
                continue
            values = _row_values(change.record, country, aeo_list.list_id, now)
            if existing is None:
                s.add(AeoOperatorRow(**values))
            else:
                for key, value in values.items():
                    setattr(existing, key, value)
            upserted += 1
            s.flush()
        s.add(AeoListRow(issuing_country=country, list_id=aeo_list.list_id, list_type=aeo_list.list_type,
                         based_on=aeo_list.based_on, issued_at=aeo_list.issued_at, applied_at=now,
                         message_id=message_id, operators=len(aeo_list.changes)))
        return ApplyResult(aeo_list.list_id, country, aeo_list.list_type, upserted, deleted)

    def lookup(self, operator_id: str, on: dt.date | None = None,
               issuing_country: str | None = None) -> list[LookupResult]:
        """Status of ``operator_id`` on ``on`` (default today), per issuing country that lists it."""
        on = on or dt.date.today()
        with self.sessions() as s:
            q = select(AeoOperatorRow).where(AeoOperatorRow.operator_id == operator_id)
            if issuing_country:
                q = q.where(AeoOperatorRow.issuing_country == issuing_country)
            rows = s.scalars(q.order_by(AeoOperatorRow.issuing_country)).all()
            if not rows:
                return [LookupResult(operator_id, on, status_on(None, on), issuing_country)]
            return [LookupResult(operator_id, on, status_on(r.to_operator(), on), r.issuing_country,
                                 r.to_operator(), r.list_id) for r in rows]

    def operators(self, issuing_country: str) -> list[Operator]:
        with self.sessions() as s:
            rows = s.scalars(select(AeoOperatorRow).where(AeoOperatorRow.issuing_country == issuing_country)
                             .order_by(AeoOperatorRow.operator_id)).all()
            return [r.to_operator() for r in rows]

    def lists(self, issuing_country: str | None = None) -> list[AeoListRow]:
        with self.sessions() as s:
            q = select(AeoListRow)
            if issuing_country:
                q = q.where(AeoListRow.issuing_country == issuing_country)
            return list(s.scalars(q.order_by(AeoListRow.id)).all())
