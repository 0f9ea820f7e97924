"""Datasets: the demo digits, .npz arrays, image folders, splits.
May import: engine.core, engine.models.
"""
