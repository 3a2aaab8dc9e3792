"""Keeptrail: who did what, when, and where — and was it allowed."""

__version__ = "0.1.0"
