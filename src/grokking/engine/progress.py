"""Progress bar with ETA for training jobs (to stderr, i.e. the job's log)."""

from __future__ import annotations

import sys


class Progress:
    """tqdm bar with ETA on stderr (the job log); sparse updates when stderr is not a terminal."""

    def __init__(self, total, desc, enabled):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self.bar = tqdm(
                total=total,
                desc=desc,
                file=sys.stderr,
                mininterval=0.5 if tty else 10.0,
                dynamic_ncols=tty,
                ascii=not tty,
                unit="step",
            )

    def set_postfix(self, **post):
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)

    def update(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
