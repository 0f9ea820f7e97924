"""The model zoo: the Keras 2 and Keras 3 model families people bring, built from code.

See ``tests/zoo/builders.py``; ``tests/test_zoo.py`` runs them through the engine and
``benchmarks/zoo.py`` runs the slow parts (prune + int8) and writes the table.
"""
