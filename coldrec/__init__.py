"""coldrec: cold-start recommendation with a pretrained transformer encoder.

The package is layered, bottom to top: ``core`` → ``data`` → ``quality`` and ``feature_store`` →
``runtime`` → (the top-level ``training`` package) → ``release`` → ``orchestration`` (beside the
top-level ``serving`` package) → ``cli``. A module never imports a layer above its own
(docs/architecture.md; tests/unit/test_import_graph.py holds it).
"""

__version__ = "0.1.0"
