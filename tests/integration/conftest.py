"""A real Label Studio server for the ``labelstudio``-marked integration tests.

The server lives in its own virtual environment (it pins many packages), by
default ``<repo>/.venv-labelstudio``, or wherever ``CONFLICT_IE_LS_VENV`` points:

    python3 -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install label-studio==1.23.2

A fresh data folder needs about 40 s of database migrations, so the first run
migrates one into ``<repo>/.cache/labelstudio-template`` and every session
copies that template into a temporary folder (start-up then takes a few
seconds). The legacy API token is read only on the first start of a data
folder, so the template is made with the same constant token the tests use; a
stamp file names the Label Studio version and token, and a template that does
not match is rebuilt. Facts about running the server headless are in
``../shared/spec/labelstudio.md``.

Without the server environment the tests are skipped, except under CI (the
``CI`` variable set), where they fail: CI must not pass by skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".cache" / "labelstudio-template"
STAMP = "conflict-ie-template.json"

#: The legacy API token (40 characters) the server is started with; baked into the template on its first start.
TOKEN = "c0nf11c7ie1n7e9ra710n7e57700000000000000"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "conflict-ie-test-password"
HEALTH_TIMEOUT = 180.0  # seconds; a fresh data folder takes about 40 s
# The first migration of the template on a machine busy with other work took over 3 minutes.
TEMPLATE_TIMEOUT = 900.0
# Variables the server reads besides its LABEL_STUDIO_ ones (spec: hence `env -u`).
UNSET = ("USERNAME", "PASSWORD", "PORT", "HOST", "USER_TOKEN")

assert len(TOKEN) == 40


def _venv() -> Path:
    return Path(os.environ.get("CONFLICT_IE_LS_VENV") or ROOT / ".venv-labelstudio")


def _executable_or_skip() -> Path:
    exe = _venv() / "bin" / "label-studio"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    message = (
        f"the Label Studio server is not installed: {exe} is missing. Create it with "
        "'python3 -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install label-studio==1.23.2' "
        "or point CONFLICT_IE_LS_VENV at such a virtual environment"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the labelstudio tests may not be skipped: {message}", pytrace=False)
    pytest.skip(message)


def _ls_version(venv: Path) -> str:
    infos = sorted(venv.glob("lib/python*/site-packages/label_studio-*.dist-info"))
    return infos[-1].name[len("label_studio-"):-len(".dist-info")] if infos else "unknown"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, token: str | None = None, timeout: float = 5.0):
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _tail(path: Path, n: int = 60) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(lines[-n:])


class Server:
    """One ``label-studio start`` process, in its own process group."""

    def __init__(self, exe: Path, data_dir: Path, log: Path):
        self.data_dir, self.log = data_dir, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("LABEL_STUDIO_")}
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
            LABEL_STUDIO_USERNAME=ADMIN_EMAIL,
            LABEL_STUDIO_PASSWORD=ADMIN_PASSWORD,
            LABEL_STUDIO_USER_TOKEN=TOKEN,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
            LABEL_STUDIO_COLLECT_ANALYTICS="false",
            LATEST_VERSION_CHECK="false",
            # An ML backend on 127.0.0.1 (conflict-ie serve in the annotation-loop tests) is refused
            # without the first, and the webhook Label Studio creates for it fails validation without the second.
            ML_BLOCK_LOCAL_IP="false",
            SSRF_PROTECTION_ENABLED="false",
        )
        cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
               "--data-dir", str(data_dir)]
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> float:
        """Poll /health until UP; then check that the port asked for is ours (the server moves silently)."""
        t0 = time.monotonic()
        last = "no answer yet"
        while True:
            if self.proc.poll() is not None:
                self.fail(f"label-studio exited with status {self.proc.returncode} before it was healthy")
            try:
                if _get_json(self.url + "/health", timeout=2).get("status") == "UP":
                    break
                last = "answered, but not UP"
            except (OSError, ValueError) as exc:  # URLError is an OSError; bad JSON a ValueError
                last = repr(exc)
            if time.monotonic() - t0 > timeout:
                self.fail(f"label-studio at {self.url} not healthy after {timeout:.0f} s ({last})")
            time.sleep(0.5)
        # The answer must come from this server with this token, not from someone else on that port.
        try:
            who = _get_json(self.url + "/api/current-user/whoami", TOKEN)
        except (OSError, ValueError) as exc:
            self.fail(f"{self.url} is healthy but refuses the test token ({exc!r}); is it another server, "
                      f"or was the data folder first started with another token?")
        if who.get("email") != ADMIN_EMAIL:
            self.fail(f"{self.url} answers as {who.get('email')!r}, not {ADMIN_EMAIL}: the port belongs to another "
                      "server (Label Studio moves to the next port without saying so)")
        return time.monotonic() - t0

    def fail(self, message: str) -> None:
        self.stop()
        pytest.fail(f"{message}\n--- last lines of {self.log} ---\n{_tail(self.log)}", pytrace=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Children left in the group after the leader exited (none expected): end them too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_file.close()


def _template(exe: Path, tmp_root: Path) -> Path:
    """The migrated data folder, made once (about 40 s) and reused while version and token match."""
    stamp = {"label_studio": _ls_version(exe.parent.parent), "token": TOKEN, "admin": ADMIN_EMAIL}
    try:
        if json.loads((TEMPLATE / STAMP).read_text()) == stamp:
            return TEMPLATE
    except (OSError, ValueError):
        pass
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    building = TEMPLATE.parent / f"labelstudio-template.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    server = Server(exe, building, tmp_root / "labelstudio-template.log")
    try:
        seconds = server.wait_healthy(TEMPLATE_TIMEOUT)
    except BaseException:
        server.stop()
        shutil.rmtree(building, ignore_errors=True)
        raise
    server.stop()
    print(f"\nLabel Studio template migrated in {seconds:.0f} s: {TEMPLATE}")
    (building / STAMP).write_text(json.dumps(stamp))
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    try:
        building.rename(TEMPLATE)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    return TEMPLATE


@pytest.fixture(scope="session")
def labelstudio_server(tmp_path_factory):
    """``(url, token)`` of a Label Studio started on a free port from a copy of the migrated template."""
    exe = _executable_or_skip()
    root = tmp_path_factory.mktemp("labelstudio")
    template = _template(exe, root)
    data_dir = root / "data"
    shutil.copytree(template, data_dir)
    server = Server(exe, data_dir, root / "label-studio.log")
    try:
        seconds = server.wait_healthy()
        print(f"\nLabel Studio up at {server.url} in {seconds:.1f} s (log: {server.log})")
        yield server.url, TOKEN
    finally:
        server.stop()
