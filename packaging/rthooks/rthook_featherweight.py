"""PyInstaller runtime hook: environment the frozen app needs before any import runs."""

import os

# pyqtgraph must pick the Qt binding we bundle (other bindings are excluded from the bundle).
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# tf_keras (Keras 2) behind tf.keras; tfmot needs it. engine/__init__ sets it too.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
