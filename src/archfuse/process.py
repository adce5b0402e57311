"""What the command-line entry points do around their work: make the working directory importable,
and end the process quickly once everything is written."""

import atexit
import logging
import os
import sys


def importable_cwd() -> None:
    """As with ``python -m archfuse.train``, a user's own modules in the working directory can be _target_s."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())


def exit_now(code: int = 0) -> None:
    """End the process once its work is written: exit handlers run, logs and streams are flushed, but the
    interpreter's teardown of the module tree is skipped (about 1 s with Lightning loaded, 0.3 s with
    torch alone), which a short run or sweep would otherwise pay at every command."""
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
