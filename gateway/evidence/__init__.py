"""Non-repudiation evidence: a hash-chained, append-only log of what was sent, received and signed for.

The log lives in the database (table ``evidence_log``) beside the state it witnesses; the
bytes it names live content-addressed in the blob store. Submodules each do one job:
``canonical`` (the hash of an entry), ``chain`` (appending), ``verify``, ``export``,
``tsp``/``timestamp`` (RFC 3161), ``purge`` (retention), ``checkpoint``/``checkpoint_verify``
(signed chain heads kept outside the database, so deleting the newest entries is noticed),
``scheduler`` (the daemon's periodic time-stamps, purges and checkpoints). Settings come from gateway.toml's ``[evidence]`` table (``gateway.config``).
"""
