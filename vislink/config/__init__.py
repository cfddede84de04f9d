"""All settings, declared once: name, default and help. Read from the environment (and ``.env``).

Everything vislink writes lives under one data folder (``VISLINK_HOME``), so the embedded default
(SQLite + embedded Qdrant) needs no server.
"""

from vislink.config.settings import SETTINGS_DOC, Settings, get_settings, make_private_dir, reset_settings

__all__ = ["Settings", "get_settings", "reset_settings", "SETTINGS_DOC", "make_private_dir"]
