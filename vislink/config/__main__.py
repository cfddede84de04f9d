"""`python -m vislink.config` prints the settings table that the README carries."""

from vislink.config.settings import settings_markdown

print(settings_markdown())
