"""coldrec: cold-start recommendation with a pretrained transformer encoder.

Shared code lives here (data contract, configuration, dataset adapters, CLI); the pipeline
stages live in the top-level folders that name them (expectations/, features/, training/,
serving/, dags/).
"""

__version__ = "0.1.0"
