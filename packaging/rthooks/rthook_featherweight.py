"""PyInstaller runtime hook: environment the frozen app needs before any import runs."""

import os

# pyqtgraph must pick the Qt binding we bundle (other bindings are excluded from the bundle).
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# tf_keras (Keras 2) behind tf.keras; tfmot needs it. engine/__init__ sets it too.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# The report's PDF (WeasyPrint) finds fonts through the bundled fontconfig library. A system
# without /etc/fonts gets the copy the weasyprint hook bundled (the fonts themselves are the
# system's; fontconfig's defaults list its usual font folders).
if not os.path.exists("/etc/fonts/fonts.conf"):
    import sys

    _fonts = os.path.join(getattr(sys, "_MEIPASS", ""), "etc", "fonts")
    if os.path.isdir(_fonts):
        os.environ.setdefault("FONTCONFIG_PATH", _fonts)
