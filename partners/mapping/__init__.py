"""Per-partner mapping between the canonical documents and each partner's dialect.

Integration API (what the pipelines call)::

    from partners.mapping import load_mappings, PartnerMappings, MappingError
    mappings = load_mappings(partner.folder)          # or partner.mappings from the registry
    wire = mappings.outbound(document_type, canonical_bytes)   # before compression/packing
    canonical = mappings.inbound(document_type, received_bytes)  # after decompression

See ``engine`` (stylesheets and extension functions), ``codelists`` (tables and reference
lists) and ``fixtures`` (per-partner mapping tests run by ``swgw partners test``).
"""
from partners.mapping.codelists import IN, OUT, CodeLists, UntranslatableCode
from partners.mapping.engine import CL_NS, MappingError, PartnerMappings, collect_mappings, load_mappings

__all__ = ["CL_NS", "IN", "OUT", "CodeLists", "MappingError", "PartnerMappings", "UntranslatableCode",
           "collect_mappings", "load_mappings"]
