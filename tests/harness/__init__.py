"""Test parties and helpers shared by tests/ and bench/ (run from the repository root)."""
