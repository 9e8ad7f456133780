"""Deployment profiles: models, loading, substitution and policy."""
