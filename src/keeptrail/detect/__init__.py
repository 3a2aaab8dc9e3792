"""Detection: rules over the event stream, the engine that runs them, and the alerts they raise.

``rules`` loads and validates YAML rules, ``clauses`` holds the pure stateful logic (windows,
thresholds, sequences, first-seen, baselines), ``engine`` feeds committed events through every
rule, ``state`` persists what the engine has learned, and ``alerts`` stores what it raised.
"""
