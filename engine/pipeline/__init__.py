"""Recipe schema and running a recipe on a model and dataset.
May import: engine.core, engine.models, engine.data, engine.techniques, engine.tflite.
"""
