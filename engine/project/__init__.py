"""Project files: state, file I/O and migrations, lock, recovery, headless runs.
May import: everything below it (core ... pipeline).
"""
