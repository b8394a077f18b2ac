class UsageStoreError(Exception):
    """The usage database cannot be opened, migrated or written."""


class UsageStoreBusy(UsageStoreError):
    """Another process holds the SQLite file's lock (still there after the busy timeout, if any)."""
