"""Command implementations: plain functions returning an ExitCode."""
