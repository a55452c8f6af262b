"""SQLite deployment history."""
