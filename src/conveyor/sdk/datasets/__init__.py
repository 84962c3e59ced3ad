"""Versioned datasets (Pachyderm's repos) in the project's store and records."""
