"""Datasets: the demo digits, .npz arrays, image folders, splits.
May import: engine.core, engine.models.

Inside the package imports go one way: ``splits`` (DataSplits, scaling and split rules) and
``pixels`` (image decoding for tf.data) at the bottom; ``image_folders`` uses both;
``datasets`` (``load_data``: demo, .npz, dispatch) uses all three. The split (seed,
validation fraction) belongs to the dataset reference, never to a recipe.
"""
