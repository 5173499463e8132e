"""Verified downloads with urllib only: nothing unverified ever appears under the final name.

:func:`download_file` tries each URL in turn. The body is streamed into a temporary file in the
destination directory (``.<name>.<random>.part``) while the bytes are counted against
Content-Length; the temporary file is then gunzipped and its decompressed size and SHA-256 are
compared with the pinned values, and only then does ``os.replace`` give it its final name. Any
failure, Ctrl-C included, deletes the temporary file. Redirects from https to anything else are
refused, so a mirror reached over https is never downgraded to plain http; a mirror that is plain
http to begin with is made safe by the pinned hash alone.
"""

import contextlib
import gzip
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tinynn.errors import ChecksumMismatchError, DownloadError

CHUNK = 1 << 16


class _NoDowngradeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https to another scheme, nor to a non-http(s) URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urlsplit(req.full_url).scheme, urlsplit(newurl).scheme
        allowed = ("https",) if old == "https" else ("http", "https")
        if new not in allowed:
            fp.close()
            why = " (never a downgrade from https)" if old == "https" else ""
            raise DownloadError(
                f"{req.full_url}: refused HTTP {code} redirect to {newurl}: expected an"
                f" {' or '.join(allowed)} URL{why}, got {new!r}"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Progress:
    """Byte progress on stderr: a live bar (mode 1), one line per file (mode 2), nothing (0)."""

    def __init__(self, mode: int, name: str, url: str, width: int = 25, interval: float = 0.1):
        self.mode, self.name, self.width, self.interval = mode, name, width, interval
        self.received, self.total = 0, None
        self._last_draw = 0.0
        if mode == 2:
            self._write(f"{name} from {url} ... ")

    def update(self, received: int, total: int | None) -> None:
        """Record ``received`` of ``total`` bytes (None: unknown); redraw the bar now and then."""
        self.received, self.total = received, total
        now = time.monotonic()
        if self.mode == 1 and now - self._last_draw >= self.interval:
            self._last_draw = now
            self._write("\r" + self._bar())

    def close(self, outcome: str) -> None:
        """End the file's line with ``outcome`` (e.g. "SHA-256 verified")."""
        if self.mode == 1:
            self._write(f"\r{self._bar()} {outcome}\n")
        elif self.mode == 2:
            self._write(f"{self.received / 1e6:.1f} MB, {outcome}\n")

    def _bar(self) -> str:
        if not self.total:
            return f"{self.name}: {self.received / 1e6:.1f} MB"
        done = min(self.width, self.width * self.received // self.total)
        arrow = "=" * done if done == self.width else "=" * max(done - 1, 0) + ">"
        size = f"{self.received / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        return f"{self.name}: {size} [{arrow.ljust(self.width, '.')}]"

    def _write(self, text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()


def _progress_mode(progress: int | str) -> int:
    """``"auto"`` -> 1 (bar) when stderr is a terminal, else 2 (one line per file)."""
    if progress == "auto":
        return 1 if sys.stderr.isatty() else 2
    if progress not in (0, 1, 2):
        raise ValueError(f"progress expected 0, 1, 2 or 'auto', got {progress!r}")
    return int(progress)


def _describe(exc: BaseException, timeout: float) -> str:
    """One phrase for a network exception: HTTP status, timeout, refused connection..."""
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()
        return f"expected HTTP status 200, got {exc.code} {exc.reason}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within the {timeout:g} s timeout"
    return f"{type(reason).__name__}: {reason}"


def _network_error(url: str, exc: BaseException, timeout: float, received: int | None = None,
                   total: int | None = None) -> DownloadError:
    """DownloadError for ``exc``; ``received`` (None before the body) and ``total`` bytes."""
    message = f"{url}: {_describe(exc, timeout)}"
    if received is not None:
        expected = f"of {total} bytes (Content-Length)" if total is not None else "bytes"
        message += f"; received {received} {expected}"
    return DownloadError(message)


def _read(response, url: str, timeout: float, received: int, total: int | None) -> bytes:
    """The next chunk of the body; network errors become DownloadError."""
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(url, exc, timeout, received, total) from exc


def _stream(opener, url: str, file, timeout: float, bar: _Progress, limit: int) -> None:
    """Copy the body of ``url`` into ``file``; check it against Content-Length and ``limit``.

    Only network errors become DownloadError; a failing ``file.write`` (disk full) propagates.
    """
    try:
        response = opener.open(url, timeout=timeout)
    except DownloadError:  # a refused redirect
        raise
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(url, exc, timeout) from exc
    with response:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        received = 0
        while chunk := _read(response, url, timeout, received, total):
            file.write(chunk)
            received += len(chunk)
            bar.update(received, total)
            if received > limit:
                raise ChecksumMismatchError(
                    f"{url}: expected at most {limit} bytes (a gzip of the pinned size),"
                    " got more; the download was abandoned"
                )
    if total is not None and received != total:
        raise DownloadError(
            f"{url}: connection closed early: expected {total} bytes (Content-Length),"
            f" got {received}"
        )


def _gunzip_digest(path: Path, limit: int) -> tuple[int, str]:
    """Return the decompressed size and SHA-256 of the gzip file ``path``.

    Reading stops once more than ``limit`` bytes came out, so a gzip bomb costs little.
    gzip's own errors (EOFError, zlib.error, BadGzipFile) propagate.
    """
    digest, size = hashlib.sha256(), 0
    with gzip.open(path, "rb") as file:
        while size <= limit and (chunk := file.read(CHUNK)):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _verify(path: Path, url: str, size: int, sha256: str) -> None:
    """Raise ChecksumMismatchError unless ``path`` gunzips to ``size`` bytes with ``sha256``."""
    try:
        got_size, got_sha256 = _gunzip_digest(path, size)
    except (EOFError, zlib.error, OSError) as exc:  # BadGzipFile is an OSError
        raise ChecksumMismatchError(
            f"{url}: expected a gzip file of {size} decompressed bytes, got"
            f" {type(exc).__name__}: {exc} ({path.stat().st_size} bytes received)"
        ) from exc
    if got_size > size:
        raise ChecksumMismatchError(f"{url}: expected {size} decompressed bytes, got more")
    if (got_size, got_sha256) != (size, sha256):
        raise ChecksumMismatchError(
            f"{url}: expected {size} decompressed bytes with SHA-256 {sha256}, got {got_size}"
            f" bytes with SHA-256 {got_sha256}"
        )


def _fetch_verified(opener, url: str, dest: Path, size: int, sha256: str, timeout: float,
                    mode: int) -> None:
    """Download ``url`` to a temporary file next to ``dest``, verify it, rename it to ``dest``."""
    temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
    file = open(temporary, "xb")  # exclusive: never truncates an existing file
    bar = _Progress(mode, dest.name, url)
    try:
        with file:
            _stream(opener, url, file, timeout, bar, limit=size + size // 64 + 1024)
            file.flush()
            os.fsync(file.fileno())
        _verify(temporary, url, size, sha256)
        os.replace(temporary, dest)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        bar.close(f"failed ({type(exc).__name__})")
        raise
    bar.close("SHA-256 verified")


def download_file(
    urls: Sequence[str],
    dest: str | os.PathLike,
    expected_size: int,
    expected_sha256: str,
    *,
    timeout: float = 30.0,
    progress: int | str = "auto",
    hint: str = "check the network and proxy settings (https_proxy, http_proxy) and retry",
) -> Path:
    """Download a gzip file from the first of ``urls`` that delivers the expected content.

    Parameters
    ----------
    urls : sequence of str
        Mirrors of the same file, tried in order; each is tried once.
    dest : str or PathLike
        Final path; its directory must exist. Written only once the content is verified.
    expected_size, expected_sha256 : int, str
        Size and SHA-256 of the *decompressed* content (gzip bytes differ between copies).
    timeout : float
        Seconds to wait for the connection and for each read (a stalled server fails).
    progress : 0, 1, 2 or "auto"
        On stderr: nothing, a live byte bar, or one line per file; "auto" picks the bar on a
        terminal and one line otherwise.
    hint : str
        How to recover, appended to the error message.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ChecksumMismatchError
        Some mirror delivered wrong content (not gzip, truncated, wrong size or SHA-256) and no
        mirror delivered the right one. The message lists every URL and what went wrong there.
    DownloadError
        Every mirror failed in transport (HTTP status, timeout, dropped connection, refused
        redirect).
    """
    if not urls:
        raise ValueError("urls expected at least one URL, got none")
    dest, mode = Path(dest), _progress_mode(progress)
    opener = urllib.request.build_opener(_NoDowngradeRedirect)
    failures: list[Exception] = []
    for url in urls:
        try:
            _fetch_verified(opener, url, dest, expected_size, expected_sha256, timeout, mode)
            return dest
        except (DownloadError, ChecksumMismatchError) as exc:
            failures.append(exc)
    content = any(isinstance(exc, ChecksumMismatchError) for exc in failures)
    error = ChecksumMismatchError if content else DownloadError
    lines = "\n".join(f"  {exc}" for exc in failures)
    raise error(
        f"could not download {dest.name} from any of {len(urls)} mirror(s); nothing was written"
        f" to {dest}:\n{lines}\nTo recover, {hint}"
    )
