"""Everything about .tflite files: measuring, metadata, deployment report, C export.
May import: engine.core, engine.models, engine.data.
"""
