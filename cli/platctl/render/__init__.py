"""Renderers: pure functions of a Report (plus display options) returning text.

Writing to stdout/stderr/files is the CLI's job, so every renderer is testable as a string.
"""

FORMATS = ("table", "json", "junit", "github")
