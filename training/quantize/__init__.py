"""Stage ``quantize``: the fine-tuned encoder as int8 ONNX for fast, torch-free CPU serving.

export.py    torch -> ONNX (fp32), fused, checked against ``SentenceTransformer.encode``
int8.py      ONNX Runtime int8 quantization; a fitted model served from it (evaluation)
fidelity.py  cosine int8 vs fp32 per catalogue text, neighbour overlap, sizes (json + html)
stage.py     the stage: ``<version>/encoder_int8/``, refused below ``quantize.min_mean_cosine``

The encoder that *runs* the result is the runtime's
:class:`coldrec.runtime.onnx_encoder.OnnxEncoder`.
"""
