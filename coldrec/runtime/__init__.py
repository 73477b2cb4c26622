"""The serving runtime: everything needed to answer a recommendation from a model version.

Load a version (:mod:`.version`), build a profile (:mod:`.profile`), score and blend the
components (:mod:`.blend`, :mod:`.parts`, :mod:`.attributes`, :mod:`.scorer`), explain each
pick (:mod:`.reasons`) and encode query text with the int8 ONNX encoder (:mod:`.onnx_encoder`).

Why it is apart from ``training/``: a serving worker must start fast and small. Nothing here
imports torch, transformers or sentence-transformers, nor fine-tuning, blend tuning, quantization
export or evaluation; those import this package, never the other way round
(``tests/unit/test_quantize.py`` checks a fresh process's ``sys.modules``, and
``tests/unit/test_import_graph.py`` the layer order).
"""
