"""Operating pipepulse on one machine: retention of raw data and SQLite backups.

``retention.apply_retention`` prunes raw rows older than the configured days (the daily rollups
stay); ``backup.backup_sqlite`` copies a live SQLite database with SQLite's online backup API.
"""
