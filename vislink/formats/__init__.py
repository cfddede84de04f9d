"""Readers of the outside formats vislink consumes, one place per format, below every stage (they import
only ``vislink.errors``): the Web Gallery of Art's image paths and URLs (``wga``) and the Replica project's
CSV files (``replica``). A malformed file raises ``FormatError`` naming the file, the line and the reason."""
