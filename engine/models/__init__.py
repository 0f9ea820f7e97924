"""Loading, safety scan, Keras 3 import and inspection of models.
May import: engine.core.
"""
