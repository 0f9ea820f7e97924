"""One module per compression technique, the technique registry, and the shared training loop.
May import: engine.core, engine.models, engine.data.

Importing the package imports the built-in technique modules below, and each registers itself
in ``engine.techniques.registry`` (light: TensorFlow is imported inside their functions). A
new technique is one more module that calls ``registry.register`` (see registry.py).
"""

from engine.techniques import cluster, distill, finetune, prune, quantize, structured

BUILTIN = (distill, structured, prune, cluster, finetune, quantize)
