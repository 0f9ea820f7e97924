"""Jobs and the JSON-lines worker process the GUI drives.
May import: every engine package.
"""
