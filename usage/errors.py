class UsageStoreError(Exception):
    """The usage database cannot be opened, migrated or written."""
