"""One module per compression technique plus the shared training loop.
May import: engine.core, engine.models, engine.data.
"""
