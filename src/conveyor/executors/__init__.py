"""Backends that run step invocations: one narrow contract, several implementations."""
