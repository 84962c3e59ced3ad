"""Warm worker processes of ``low_latency`` deployments, and what a server process
keeps for its deployments (pools, rate buckets, execution slots). Knows nothing of the
server's state or tables: ``deployments`` drives it."""
