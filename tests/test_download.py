"""Tests of verified downloads, against a local HTTP server on 127.0.0.1 (never the internet)."""

import gzip
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.local_server import (
    LocalServer,
    SilentServer,
    dropped,
    good,
    redirect,
    stalled,
    status,
)
from tests.test_datasets import assert_loaded, file_path, gz, idx_bytes, random_split
from tinynn.datasets import download as dl
from tinynn.datasets import fashion_mnist as fm
from tinynn.errors import (
    ChecksumMismatchError,
    DatasetCorruptError,
    DatasetNotFoundError,
    DownloadError,
)

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 0.5
RAW = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(RAW).hexdigest()
OTHER = RAW[:-1] + b"\x00"  # same size, other content
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                   "ALL_PROXY")


@pytest.fixture
def server(monkeypatch):
    """A local server; proxies are cleared so that requests go straight to 127.0.0.1."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with LocalServer() as local:
        yield local


def fetch(urls, dest: Path, progress=0, **kwargs) -> Path:
    return dl.download_file(urls, dest, len(RAW), SHA, timeout=TIMEOUT, progress=progress,
                            **kwargs)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- download_file -------------------------------------------------------------------------


@pytest.mark.parametrize("content_length", [True, False])
def test_download_good_file(server, tmp_path, content_length):
    server.routes["/f.gz"] = good(gz(RAW), content_length)
    assert fetch([server.url + "/f.gz"], tmp_path / "f.gz") == tmp_path / "f.gz"
    assert gzip.decompress((tmp_path / "f.gz").read_bytes()) == RAW
    assert leftovers(tmp_path) == ["f.gz"]


# name -> (behaviour given the server, error type, phrases the message must hold)
FAILURES = {
    "wrong_bytes": (lambda s: good(gz(OTHER)), ChecksumMismatchError,
                    [f"expected {len(RAW)} decompressed bytes with SHA-256 {SHA}",
                     f"got {len(RAW)} bytes with SHA-256 {hashlib.sha256(OTHER).hexdigest()}"]),
    "not_gzip": (lambda s: good(RAW), ChecksumMismatchError,
                 ["expected a gzip file", "BadGzipFile", f"({len(RAW)} bytes received)"]),
    "empty": (lambda s: good(b""), ChecksumMismatchError, ["got 0 bytes"]),
    "too_long": (lambda s: good(gz(RAW + b"x")), ChecksumMismatchError,
                 [f"expected {len(RAW)} decompressed bytes, got more"]),
    "endless": (lambda s: good(RAW * 2), ChecksumMismatchError, ["expected at most"]),
    "dropped_with_length": (lambda s: dropped(gz(RAW)), DownloadError,
                            ["connection closed early", f"expected {len(gz(RAW))} bytes",
                             f"got {len(gz(RAW)) // 2}"]),
    "dropped_without_length": (lambda s: dropped(gz(RAW), content_length=False),
                               ChecksumMismatchError, ["expected a gzip file", "EOFError"]),
    "stalled": (lambda s: stalled(gz(RAW), s), DownloadError,
                [f"no answer within the {TIMEOUT} s timeout", f"of {len(gz(RAW))} bytes"]),
    "http_404": (lambda s: status(404), DownloadError, ["expected HTTP status 200, got 404"]),
    "redirect_to_ftp": (lambda s: redirect("ftp://127.0.0.1:9/f.gz"), DownloadError,
                        ["refused HTTP 302 redirect to ftp://127.0.0.1:9/f.gz"]),
}


@pytest.mark.parametrize("kind", FAILURES)
def test_download_failure_leaves_nothing(server, tmp_path, kind):
    behaviour, error, phrases = FAILURES[kind]
    server.routes["/f.gz"] = behaviour(server)
    url = server.url + "/f.gz"
    start = time.monotonic()
    with pytest.raises(error) as info:
        fetch([url], tmp_path / "f.gz")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert url in message and "nothing was written" in message and "To recover" in message
    for phrase in phrases:
        assert phrase in message
    assert leftovers(tmp_path) == []


def test_download_server_that_never_answers(server, tmp_path):
    with SilentServer() as silent:
        with pytest.raises(DownloadError, match=f"no answer within the {TIMEOUT} s timeout"):
            fetch([silent.url + "/f.gz"], tmp_path / "f.gz")
    assert leftovers(tmp_path) == []


def test_download_failure_keeps_the_previous_file(server, tmp_path):
    (tmp_path / "f.gz").write_bytes(b"previous")
    server.routes["/f.gz"] = good(gz(OTHER))
    with pytest.raises(ChecksumMismatchError):
        fetch([server.url + "/f.gz"], tmp_path / "f.gz")
    assert (tmp_path / "f.gz").read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["f.gz"]


def test_download_tries_every_mirror_in_order(server, tmp_path):
    server.routes.update({"/a/f.gz": status(503), "/b/f.gz": stalled(gz(RAW), server),
                          "/c/f.gz": good(gz(OTHER)), "/d/f.gz": good(gz(RAW))})
    with SilentServer() as silent:
        urls = ["http://127.0.0.1:9/f.gz", silent.url + "/f.gz"]
        urls += [f"{server.url}/{m}/f.gz" for m in "abcd"]
        fetch(urls, tmp_path / "f.gz")
    assert server.requests == ["/a/f.gz", "/b/f.gz", "/c/f.gz", "/d/f.gz"]
    assert gzip.decompress((tmp_path / "f.gz").read_bytes()) == RAW
    assert leftovers(tmp_path) == ["f.gz"]


def test_download_error_lists_every_mirror(server, tmp_path):
    server.routes.update({"/a/f.gz": status(404), "/b/f.gz": good(gz(OTHER))})
    urls = [f"{server.url}/{m}/f.gz" for m in "ab"]
    with pytest.raises(ChecksumMismatchError) as info:  # one mirror sent wrong content
        fetch(urls, tmp_path / "f.gz", hint="ask the teacher")
    message = str(info.value)
    assert all(url in message for url in urls) and message.endswith("To recover, ask the teacher")
    assert "from any of 2 mirror(s)" in message


def test_download_follows_http_redirects(server, tmp_path):
    server.routes.update({"/old.gz": redirect("/new.gz", 301), "/new.gz": good(gz(RAW))})
    fetch([server.url + "/old.gz"], tmp_path / "f.gz")
    assert server.requests == ["/old.gz", "/new.gz"]
    assert leftovers(tmp_path) == ["f.gz"]


@pytest.mark.parametrize("old, new, refused", [
    ("https://mirror.invalid/f.gz", "http://mirror.invalid/f.gz", True),
    ("https://mirror.invalid/f.gz", "ftp://mirror.invalid/f.gz", True),
    ("http://mirror.invalid/f.gz", "file:///etc/passwd", True),
    ("https://mirror.invalid/f.gz", "https://other.invalid/f.gz", False),
    ("http://mirror.invalid/f.gz", "https://mirror.invalid/f.gz", False),
])
def test_redirect_never_downgrades_https(old, new, refused):
    """Checked on the handler itself: nothing is opened, so no server is needed."""
    handler = dl._NoDowngradeRedirect()
    request = urllib.request.Request(old)
    if refused:
        with pytest.raises(DownloadError, match=f"refused HTTP 302 redirect to {new}"):
            handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, new)
    else:
        follow = handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, new)
        assert follow.full_url == new


def test_download_ctrl_c_in_process_leaves_nothing(server, tmp_path, monkeypatch):
    def interrupt(self, received, total):
        raise KeyboardInterrupt

    monkeypatch.setattr(dl._Progress, "update", interrupt)
    server.routes["/f.gz"] = good(gz(RAW))
    with pytest.raises(KeyboardInterrupt):
        fetch([server.url + "/f.gz"], tmp_path / "f.gz")
    assert leftovers(tmp_path) == []


def test_download_sigint_leaves_nothing(server, tmp_path):
    """A real Ctrl-C (SIGINT) in another process while it waits for the rest of the body."""
    server.routes["/f.gz"] = stalled(gz(RAW), server)
    dest = tmp_path / "cache" / "f.gz"
    dest.parent.mkdir()
    script = textwrap.dedent(f"""
        from tinynn.datasets.download import download_file
        download_file([{server.url + '/f.gz'!r}], {str(dest)!r}, {len(RAW)}, {SHA!r},
                      timeout=60, progress=0)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in dest.parent.glob(".f.gz.*.part")):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the download never started")
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert leftovers(dest.parent) == []


@pytest.mark.parametrize("progress, pattern", [
    (0, r"\A\Z"),
    (1, r"\A(\rf\.gz: [\d.]+/0\.3 MB \[[=>.]{25}\])+ SHA-256 verified\n\Z"),
    (2, r"\Af\.gz from http://\S+ \.\.\. 0\.3 MB, SHA-256 verified\n\Z"),
    ("auto", r"\Af\.gz from http://\S+ \.\.\. 0\.3 MB, SHA-256 verified\n\Z"),  # no tty
])
def test_download_progress(server, tmp_path, capsys, progress, pattern):
    server.routes["/f.gz"] = good(gz(RAW))
    fetch([server.url + "/f.gz"], tmp_path / "f.gz", progress=progress)
    assert re.fullmatch(pattern, capsys.readouterr().err)


def test_download_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least one URL"):
        fetch([], tmp_path / "f.gz")
    with pytest.raises(ValueError, match="progress expected 0, 1, 2 or 'auto', got 3"):
        fetch(["http://127.0.0.1:9/f.gz"], tmp_path / "f.gz", progress=3)
    assert leftovers(tmp_path) == []


# --- load_data and `make data` downloading (small synthetic "official" files) --------------


@pytest.fixture
def mirror(server, places, monkeypatch):
    """Make a small random data set official (FILES), served at ``server.url + "/m/"``.

    Returns the arrays; ``places`` has pointed the cache into tmp_path and emptied the search.
    """
    arrays = random_split()
    specs = {}
    for key, array in arrays.items():
        raw = idx_bytes(array)
        spec = fm.FILES[key]._replace(size=len(raw), sha256=hashlib.sha256(raw).hexdigest())
        specs[key] = spec
        server.routes[f"/m/{spec.name}.gz"] = good(gz(raw))
    monkeypatch.setattr(fm, "FILES", specs)
    monkeypatch.setattr(fm, "MIRRORS", [server.url + "/m/"])
    monkeypatch.setattr(fm, "TIMEOUT", TIMEOUT)
    return arrays


def served(key: str) -> str:
    return f"/m/{fm.FILES[key].name}.gz"


def test_load_data_downloads_into_the_cache(server, places, mirror, capsys):
    assert_loaded(fm.load_data(), mirror)
    assert sorted(server.requests) == sorted(served(key) for key in fm.FILES)
    assert leftovers(places["cache"]) == sorted(f"{spec.name}.gz" for spec in fm.FILES.values())
    err = capsys.readouterr().err
    assert f"downloading 4 file(s) into {places['cache']}" in err
    assert err.count("SHA-256 verified\n") == 4
    assert_loaded(fm.load_data(), mirror)  # now from the cache
    assert len(server.requests) == 4


def test_load_data_falls_back_to_the_next_mirror(server, places, mirror, monkeypatch):
    with SilentServer() as silent:
        monkeypatch.setattr(fm, "MIRRORS", ["http://127.0.0.1:9/", silent.url + "/", *fm.MIRRORS])
        assert_loaded(fm.load_data(), mirror)


def test_load_data_download_false_never_uses_the_network(server, places, mirror):
    with pytest.raises(DatasetNotFoundError, match="fashion_mnist --download"):
        fm.load_data(download=False)
    assert fm.main(["--check"]) == 1
    assert server.requests == []
    assert not places["cache"].exists()


def test_load_data_with_path_never_downloads(server, places, mirror, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="searched only there"):
        fm.load_data(tmp_path / "given")
    assert server.requests == []


def test_load_data_downloads_only_missing_files(server, places, mirror):
    places["cache"].mkdir(parents=True)
    for key in ("train_images", "test_labels"):
        file_path(places["cache"], key).write_bytes(gz(idx_bytes(mirror[key])))
    assert_loaded(fm.load_data(), mirror)
    assert sorted(server.requests) == sorted([served("train_labels"), served("test_images")])


# name -> function of the good IDX bytes giving the broken bytes of a cached .gz file
BROKEN_CACHE = {
    "wrong_hash": lambda raw: gz(raw[:-1] + bytes([raw[-1] ^ 1])),
    "truncated_gzip": lambda raw: gz(raw)[:-5],
    "empty": lambda raw: b"",
}


@pytest.mark.parametrize("kind", BROKEN_CACHE)
def test_broken_cached_file_is_downloaded_again_once(server, places, mirror, kind, capsys):
    write_official(places["cache"], mirror)
    target = file_path(places["cache"], "train_images")
    target.write_bytes(BROKEN_CACHE[kind](idx_bytes(mirror["train_images"])))
    assert_loaded(fm.load_data(), mirror)
    assert server.requests == [served("train_images")]
    assert gzip.decompress(target.read_bytes()) == idx_bytes(mirror["train_images"])
    assert f"{target} is broken" in capsys.readouterr().err


def test_broken_cached_file_and_bad_mirror_is_an_error(server, places, mirror):
    write_official(places["cache"], mirror)
    target = file_path(places["cache"], "test_labels")
    broken = gz(idx_bytes(mirror["test_labels"] ^ 1))
    target.write_bytes(broken)
    server.routes[served("test_labels")] = good(broken)
    with pytest.raises(ChecksumMismatchError) as info:
        fm.load_data()
    assert server.requests == [served("test_labels")]  # once, no loop
    assert server.url + served("test_labels") in str(info.value)
    assert fm.FILES["test_labels"].sha256 in str(info.value)
    assert target.read_bytes() == broken
    assert leftovers(places["cache"]) == sorted(f"{s.name}.gz" for s in fm.FILES.values())


def test_broken_file_outside_the_cache_is_not_downloaded(server, places, mirror, monkeypatch):
    write_official(places["env"], mirror)
    file_path(places["env"], "train_labels").write_bytes(b"")
    monkeypatch.setenv("TINYNN_DATA", str(places["env"]))
    with pytest.raises(DatasetCorruptError, match="empty file"):
        fm.load_data()
    assert server.requests == []


def test_load_data_download_failure_says_what_to_do(server, places, mirror, monkeypatch):
    server.routes.clear()  # every file: 404
    with pytest.raises(DownloadError) as info:
        fm.load_data()
    message = str(info.value)
    assert "expected HTTP status 200, got 404" in message
    assert "dataset-fashion-mnist" in message and "TINYNN_DATA" in message
    assert leftovers(places["cache"]) == []


def test_download_command(server, places, mirror, capsys):
    assert fm.main(["--download"]) == 0
    assert capsys.readouterr().out.strip() == str(places["cache"])
    assert fm.main(["--check"]) == 0
    assert len(server.requests) == 4
    assert_loaded(fm.load_data(download=False), mirror)


def test_download_command_failure(server, places, mirror, capsys):
    server.routes.clear()
    assert fm.main(["--download"]) == 1
    assert "got 404" in capsys.readouterr().err


def write_official(directory: Path, arrays: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        file_path(directory, key).write_bytes(gz(idx_bytes(array)))


# --- the real files, served locally: a machine without the Debian package -------------------


@pytest.fixture
def real_mirror(real_data_dir, server, places, monkeypatch):
    """Serve the real .gz files at ``server.url + "/real/"``; nothing found locally."""
    for spec in fm.FILES.values():
        body = (real_data_dir / f"{spec.name}.gz").read_bytes()
        server.routes[f"/real/{spec.name}.gz"] = good(body)
    monkeypatch.setattr(fm, "MIRRORS", [server.url + "/real/"])
    return server.url + "/real/"


def test_real_download_is_verified(real_mirror, places):
    (x_train, y_train), (x_test, y_test) = fm.load_data()
    assert (x_train.shape, x_test.shape) == ((60_000, 28, 28), (10_000, 28, 28))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)
    assert fm.find_data_dir() == places["cache"]


def test_example_runs_after_download(real_mirror, places, tmp_path):
    """`python examples/task1_one_hidden.py` with no local copy: it downloads, then trains."""
    script = textwrap.dedent(f"""
        import runpy, sys
        from pathlib import Path
        import tinynn.datasets.fashion_mnist as fm
        fm.MIRRORS = [{real_mirror!r}]
        fm.SYSTEM_DIR = Path({str(places["system"])!r})
        sys.path.insert(0, {str(REPO / "examples")!r})
        sys.argv = ["task1_one_hidden.py", "--limit", "300", "--epochs", "1", "--lr-sweep", "",
                    "--out", {str(tmp_path / "out")!r}, "--verbose", "2"]
        runpy.run_path({str(REPO / "examples" / "task1_one_hidden.py")!r}, run_name="__main__")
    """)
    env = {key: value for key, value in os.environ.items() if key not in PROXY_VARIABLES}
    env.update(PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "xdg"), MPLBACKEND="Agg")
    env.pop("TINYNN_DATA", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    assert done.stderr.count("SHA-256 verified") == 4
