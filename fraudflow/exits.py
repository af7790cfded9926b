"""The exit codes of every `fraudflow` command, in one table (README's command table, docs/error-codes.md).

`plan` follows Terraform's `plan -detailed-exitcode`: 0 no changes, 1 error, 2 changes. So that a script's
`case $?` can never read a usage mistake as "changes", command-line mistakes use BSD sysexits' EX_USAGE (64) in
every command, and a bug in fraudflow (an exception that is not a user's mistake) uses EX_SOFTWARE (70).
"""

from __future__ import annotations

OK = 0  # done; `plan`: nothing to change; `validate`: the file is valid
ERROR = 1  # the user's input or the world is wrong: an invalid file, a failed step, AWS refused a call
CHANGES = 2  # `plan` only: apply would change something
GATE_STOPPED = 3  # `run` only: the quality gate stopped the pipeline (a normal outcome)
VIOLATIONS = 4  # `monitor` only: a drift, quality or bias check was violated (a normal outcome)
USAGE = 64  # the command line is wrong: a bad flag, an unknown --env or --pipeline, a bad --set (EX_USAGE)
INTERNAL = 70  # a bug in fraudflow: one line on stderr, the traceback in a crash log (EX_SOFTWARE)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
