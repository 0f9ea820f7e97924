"""Lowest layer: errors, events (Reporter, cancel token), lazy TensorFlow access, the demo's
shipped resources. Imports nothing else from the engine.
"""
