"""The enrichment export: committed capture batches out as OpenTelemetry spans and log records.

``enrich`` maps batches to spans and log records (``semconv`` names their
attributes) on the SDK providers of ``providers``; ``targets`` resolves where
they go; ``outbox`` and ``disk_queue`` hold them; ``sender`` POSTs them as
OTLP/HTTP; ``scheduler`` runs the persist and send loops;
``enrichment_service`` ties them to the bridge's lifecycle.
"""
