"""What Conveyor asks of git: the commit a run is pinned to, and worktrees for reruns."""

from conveyor.vcs.git import GitState, add_worktree, git_state, remove_worktree

__all__ = ["GitState", "add_worktree", "git_state", "remove_worktree"]
