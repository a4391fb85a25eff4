"""Explanations: what a trained model looked at (sequences: attention, ISM, attributions, motifs; images: CAMs).

``explain(predictor, inputs, method, out_dir, **options)`` is the library entry point; ``methods(kind)`` lists the
registered methods of a task kind. Importing the package registers the built-in methods and runners.
"""

from __future__ import annotations

from biolens.interpret.registry import explain, get_method, methods, register_method, register_runner
from biolens.interpret import sequences as _sequences  # noqa: E402,F401  isort: skip
from biolens.interpret import images as _images  # noqa: E402,F401  isort: skip

__all__ = ["explain", "get_method", "methods", "register_method", "register_runner"]
