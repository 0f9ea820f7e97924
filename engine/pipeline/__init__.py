"""Recipe schema and running recipes on a model and dataset.
May import: engine.core, engine.models, engine.data, engine.techniques, engine.tflite.

- ``prepare`` (prepare.py): load and check the model and the data, split the data by the
  dataset's split (never the recipe's seed), measure the float baseline once — cached on
  disk by content (``$XDG_CACHE_HOME/featherweight/baselines``).
- ``run_recipe`` / ``compress`` (run.py): run one recipe on a ``Prepared`` (``compress`` =
  ``prepare`` + ``run_recipe``), convert, measure, write the output folder.
- ``steps`` (steps.py): the training steps of a recipe (with ``checkpoints.PrefixCache``
  restoring trained prefixes); ``recipe`` (recipe.py): the schema.
- ``analyze`` (sensitivity.py): per-layer sensitivity, ``sensitivity.json``.
- ``search`` (search.py): the smallest model within an accuracy budget (Optuna; its storage
  in search_storage.py), ``search.json`` and ``best/``; ``materialize`` turns a trial into
  an ordinary run folder measured on test.
"""
