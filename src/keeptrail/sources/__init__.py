"""Where lines come from: one module per kind of source."""
