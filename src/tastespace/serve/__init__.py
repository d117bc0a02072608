"""serve stage (see docs/architecture.md)."""
