"""The one short exception hierarchy. Expected failures are values; these abort a launch.

Each carries an exit code so the CLI can say what happened with a meaningful status:
2 = the user must change something (input, flags, credentials), 3 = a template or the
environment is broken, 4 = stopped on purpose and resumable (budget), 1 = our own bug.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: a launch cannot go on. The message says what is wrong and what to do."""

    exit_code = 1


class UsageError(AgentError):
    """Bad input from the user: unknown idea, malformed file, missing credentials, bad flag."""

    exit_code = 2


class TemplateError(AgentError):
    """The template or the machine cannot do what was asked (baseline fails, preset missing)."""

    exit_code = 3


class StoppedResumable(AgentError):
    """Stopped cleanly before a limit was crossed (cost budget); `--resume` continues."""

    exit_code = 4


class ReplayDiverged(AgentError):
    """A recorded session no longer matches what the live run asks for."""

    exit_code = 5


class Crashed(AgentError):
    """Something unexpected escaped a stage (a bug, a full disk, git failing). It is journaled
    with its traceback and the run directory stays consistent: `--resume` continues."""

    exit_code = 1
