"""The ``conveyor`` command line: parse, call the SDK, render."""
