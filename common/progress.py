"""Progress of long work: a live bar (tqdm) on a terminal, plain lines in a log file."""

import sys
import time


def say(text, stream=None):
    """Print a line of a program's own; on a terminal through tqdm, so that a live bar stays
    below it."""
    stream = stream or sys.stdout
    if stream.isatty():
        import tqdm
        tqdm.tqdm.write(text, file=stream)
    else:
        print(text, file=stream, flush=True)


class Progress:
    """Progress over ``total`` images: a live bar (tqdm) when ``stream`` (default stdout) is a
    terminal, a plain line every tenth of the way otherwise (a log file)."""

    def __init__(self, what, total, stream=None):
        self.what, self.total, self.start = what, total, time.time()
        self.stream = stream or sys.stdout
        self.shown, self.bar = -1, None
        if self.stream.isatty():
            import tqdm
            self.bar = tqdm.tqdm(total=total, desc=what, unit="images", file=self.stream,
                                 dynamic_ncols=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def update(self, done):
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if done >= self.total:
                self.close()
            return
        rate = done / max(time.time() - self.start, 1e-9)
        left = (self.total - done) / max(rate, 1e-9)
        if 10 * done // max(self.total, 1) > self.shown:
            self.shown = 10 * done // max(self.total, 1)
            print(f"{self.what}: {done}/{self.total} images  {rate:.0f} images/s  "
                  f"{int(left) // 60}:{int(left) % 60:02d} left", flush=True, file=self.stream)
