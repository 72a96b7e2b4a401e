"""Writes of scheduling (keyword-only, each owning its transaction). See docs/scheduling.md."""
