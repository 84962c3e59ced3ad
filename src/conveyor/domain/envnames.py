"""Environment variable names that change how a step executes, not what it reads.

A secret (on a server, or from the caller's environment in a local run) may never set
one: whoever sets ``LD_PRELOAD``, ``PATH`` or ``BASH_ENV`` decides what code a step
runs. The list is documented in docs/server.md; it names the loader, shell, interpreter
and git variables that load or run code, plus whole families by prefix.
"""

from __future__ import annotations

EXECUTION_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "ENV",
        "BASH_ENV",
        "BASHOPTS",
        "SHELLOPTS",
        "IFS",
        "PS4",
        "CDPATH",
        "GLOBIGNORE",
        "PROMPT_COMMAND",
        "TMPDIR",
        "GCONV_PATH",
        "LOCPATH",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "R_PROFILE",
        "R_PROFILE_USER",
        "R_ENVIRON",
        "R_ENVIRON_USER",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_PROXY_COMMAND",
        "GIT_EXTERNAL_DIFF",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_COUNT",
    }
)
EXECUTION_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_", "GIT_CONFIG_", "CONVEYOR_")
EXAMPLES = "PATH, HOME, LD_*, DYLD_*, PYTHON*, BASH_ENV, ENV, IFS"


def changes_execution(name: str) -> bool:
    """Whether setting the variable ``name`` changes which code a step runs (names are
    case-sensitive, as on Linux and macOS: ``ld_preload`` loads nothing)."""
    return name in EXECUTION_NAMES or name.startswith(EXECUTION_PREFIXES)
