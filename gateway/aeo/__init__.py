"""AEO mutual-recognition registry: apply incoming operator lists, answer lookups, build outgoing lists.

* ``model``: pure parse/build of the canonical AEO document (``partners/schemas/aeo/aeo.xsd``)
  and the status-as-of-a-date rule.
* ``national``: reads the national AEO data (CSV) that outgoing lists are built from.
* ``registry``: the SQLAlchemy tables (migration 0003) and ``AeoRegistry.apply/lookup``.
"""
