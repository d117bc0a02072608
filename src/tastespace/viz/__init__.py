"""viz stage (see docs/architecture.md)."""
