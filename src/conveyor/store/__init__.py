"""Content-addressed storage and hashing; knows nothing about pipelines."""
