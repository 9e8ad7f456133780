"""platctl: the pre-boot gate and diagnostic tool for the platform's backing services."""

__version__ = "0.1.0"
