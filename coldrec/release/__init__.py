"""Layer 6, release: from a trained version to the one that serves.

The promotion gate (:mod:`.promotion_gate`: may a candidate replace production?), the model
registry on GTO (:mod:`.model_registry`), promotion and rollback (:mod:`.promotion`), the Bento
(:mod:`.bundle`) and the model-versions view the web page shows (:mod:`.model_report`).
"""
