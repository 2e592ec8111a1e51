"""Errors an operator sees as a one-line message (the CLI prints them, no traceback)."""


class EvidenceError(Exception):
    """An evidence command cannot do what was asked; the message says why and what to do."""
