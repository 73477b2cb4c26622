"""The data validation (Great Expectations 1.x) that stops bad data before training.

Suites live as JSON in ``expectations/``; thresholds in ``params.yaml`` (``quality:``). Entry
points: :func:`validate_source` (what the CLI, the DAG task and the DVC stage call),
:func:`validate` (an in-memory dataset), :func:`validate_files` (own files). Importing this
package does not import Great Expectations (that happens on the first validation).
"""
from coldrec.quality.results import Outcome, ValidationFailed, ValidationResult
from coldrec.quality.validation import run_validation, validate, validate_files, validate_source

__all__ = ["Outcome", "ValidationFailed", "ValidationResult", "run_validation", "validate", "validate_files", "validate_source"]
