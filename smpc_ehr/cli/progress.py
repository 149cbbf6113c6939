"""Progress of `smpc-ehr run` on stderr: a redrawn bar on a terminal, and when stderr
is not one (a log file, a pipe, a background job) one line per phase: the job queued,
each new step of a stage (every party reports it; the first report is printed), the
result received."""

from __future__ import annotations

import sys
import time

from smpc_ehr.client import Progress

BAR_WIDTH = 24


def progress_line(p: Progress) -> str:
    """One terminal line for a progress note: a bar when the total is known."""
    if p.total > 0:
        filled = round(BAR_WIDTH * min(p.step, p.total) / p.total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{p.stage} [{bar}] {p.step}/{p.total} {p.message}"
    return f"{p.stage}: {p.message}"


def log_line(text: str) -> None:
    """One line on stderr, stamped with the UTC time (not on a terminal)."""
    stamp = time.strftime("%H:%M:%SZ", time.gmtime())
    print(f"{stamp} smpc-ehr run: {text}", file=sys.stderr, flush=True)


def phase_text(p: Progress) -> str:
    """A progress note as one log line's text."""
    steps = f" {p.step}/{p.total}" if p.total > 0 else f" {p.step}" if p.step else ""
    return f"{p.stage}{steps}" + (f" ({p.message})" if p.message else "")


class ProgressPrinter:
    """The `on_progress` and `on_submitted` of a run: `terminal` redraws one line (the
    bar), otherwise one line per phase; `quiet` prints nothing."""

    def __init__(self, terminal: bool, quiet: bool) -> None:
        self.terminal = terminal
        self.quiet = quiet
        self._last: tuple[str, int] | None = None

    def submitted(self, job_id: str) -> None:
        if not self.terminal and not self.quiet:
            log_line(f"job {job_id} queued")

    def progress(self, p: Progress) -> None:
        if self.quiet:
            return
        if self.terminal:
            print(f"\r\033[K{progress_line(p)}", end="", file=sys.stderr, flush=True)
        elif (p.stage, p.step) != self._last:
            self._last = (p.stage, p.step)
            log_line(phase_text(p))

    def done(self, job_id: str, seconds: float) -> None:
        if self.quiet:
            return
        if self.terminal:
            print("\r\033[K", end="", file=sys.stderr, flush=True)  # clear the progress line
        else:
            log_line(f"job {job_id} done in {seconds:.1f} s")
