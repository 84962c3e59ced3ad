"""What Conveyor asks of git: the commit a run is pinned to, and worktrees for reruns."""
