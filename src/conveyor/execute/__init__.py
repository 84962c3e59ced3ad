"""Running a plan: a pure scheduler fed by events, and the runner loop that does I/O."""
