"""What the webhook handlers, the worker, the CLI and the backfill share: labelling an issue,
a repository's settings and PTM share, importing history, exporting maintainers' corrections,
and the records the statistics count."""
