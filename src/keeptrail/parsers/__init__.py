"""One pure module per log format; :mod:`.detect` decides which one a line belongs to."""
