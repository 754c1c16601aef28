"""Progress reports of long work (training epochs, scoring blocks) on stderr.

On a terminal, or in a Jupyter output, a report is a tqdm bar, redrawn in place and
closed with how the work ended. Anywhere else -- stderr written to a log file or a
pipe -- the bar's in-place redraws would each add a line's worth of bytes to the log
(a bar every tenth of a second), so a report is a few plain lines instead: one every
:data:`HEARTBEAT_SECONDS` while the work runs and one when it ends.
"""

from __future__ import annotations

import sys
import threading
from time import monotonic as _now

__all__ = ["HEARTBEAT_SECONDS", "Progress", "interactive", "tracked_blocks"]

#: Seconds between two plain lines of a report that runs long (stderr not a terminal).
HEARTBEAT_SECONDS = 60.0


def interactive(stream):
    """Whether ``stream`` redraws a line in place: a terminal, or a Jupyter output
    (whose streams say they are no terminal, yet render carriage returns)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"


def _duration(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """The report of one task of ``total`` units on stderr (see the module's docstring).

    Parameters
    ----------
    total : int
        Units the task takes when it runs to its end.
    desc : str
        What the task is, first on every line (``"training"``, ``"window 64"``).
    unit : str
        The unit counted (``"epoch"``, ``"sample"``).
    delay : float, default=0.0
        Seconds the task must run before anything is shown: a short task says nothing.
    stream : file-like or None, default=None
        Where to write; ``None``: :data:`sys.stderr` at the time the report starts.
    """

    def __init__(self, total, desc, *, unit, delay=0.0, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.desc, self.unit, self.delay = int(total), desc, unit, float(delay)
        self.n, self.postfix = 0, {}
        self.started = self._last_line = _now()
        self.bar = None
        if interactive(self.stream):
            from tqdm import tqdm  # plain tqdm: tqdm.auto would pick widgets in Jupyter

            self.bar = tqdm(total=self.total, desc=desc, unit=unit, file=self.stream,
                            delay=self.delay, dynamic_ncols=True)

    def update(self, n=1, **postfix):
        """Count ``n`` more units done; ``postfix`` (name -> text) replaces the figures
        shown after the count."""
        self.n += n
        if postfix:
            self.postfix = postfix
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
            return
        now = _now()
        if now - self._last_line >= HEARTBEAT_SECONDS and now - self.started >= self.delay:
            self._line(f"{self.n}/{self.total} {self.unit}s")

    def write(self, line):
        """Print ``line`` on its own (a detail of ``verbose=2``), above the bar if any."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self, ending=None):
        """End the report. Without ``ending`` the task ran to its end: the bar is drawn
        full, at the units done (a task may end a little short of ``total``, its
        budget met). ``ending`` says why it stopped short (``"stopped early at epoch
        26: ..."``): the bar stays at the units done, with that said."""
        elapsed = _now() - self.started
        if self.bar is not None:
            if ending is not None:
                self.bar.set_description(f"{self.desc}: {ending}", refresh=False)
            elif 0 < self.n < self.total:
                self.bar.total = self.n
            self.bar.close()  # draws the bar's last state, if it was ever shown
            return
        if elapsed < self.delay:
            return
        done = f"{self.n}/{self.total} {self.unit}s" if ending else f"{self.n} {self.unit}s"
        self._line(f"{ending + ', ' if ending else ''}{done} in {_duration(elapsed)}")

    def _line(self, what):
        figures = "".join(f", {name}={value}" for name, value in self.postfix.items())
        print(f"{self.desc}: {what}{figures}", file=self.stream, flush=True)
        self._last_line = _now()


def tracked_blocks(blocks, total, desc, *, unit="sample", delay=2.0, stream=None):
    """``blocks`` (``(start, stop, ...)`` tuples, as a model's ``errors`` yields them)
    passed through unchanged, counted in a :class:`Progress` of ``total`` units that
    shows once they take more than ``delay`` seconds. Outside the main thread (a Dask
    worker scoring one block of a collection) nothing is shown: reports from threads
    running side by side would interleave."""
    if threading.current_thread() is not threading.main_thread():
        yield from blocks
        return
    progress = Progress(total, desc, unit=unit, delay=delay, stream=stream)
    ending = "interrupted"
    try:
        for block in blocks:
            progress.update(block[1] - block[0])
            yield block
        ending = None
    finally:
        progress.close(ending)
