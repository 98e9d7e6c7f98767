"""A Hugging Face Hub-compatible server on 127.0.0.1, for tests.

`HubServer` starts one child process that serves, on one loopback port (its `url` is what
`HF_ENDPOINT` should be set to):

* **Reads** — repo info, refs, trees, paths-info, file HEAD/GET (`/resolve/`) — are
  served by `olah` (PyPI package) in its offline mode, from plain git repositories laid out as
  `{root}/mirrors/{models|datasets|spaces}/{org}/{name}` (bare repos, default branch `main`).
  So `hf_hub_download`, `snapshot_download`, `PyTorchModelHubMixin.from_pretrained` and the
  HF cache go through the real client code paths against a real server.

* **Writes** — the one piece that is NOT a real Hub implementation. No installable server
  accepts uploads, so this module adds a minimal write API, just what `create_repo`,
  `upload_file`, `upload_folder`, `create_commit` and `push_to_hub` of huggingface_hub 2.4 call:

  - `POST /api/repos/create`                      -> git init (bare) + empty "initial commit";
                                                     409 if the repo exists (exist_ok works).
  - `POST /api/{type}s/{org}/{name}/preupload/{rev}` -> `"uploadMode": "regular"` for EVERY
                                                     file, plus the current git blob id as
                                                     `oid` so unchanged files are skipped.
  - `POST /api/{type}s/{org}/{name}/commit/{rev}`  -> applies the NDJSON payload (`file`
                                                     base64, `deletedFile`, `deletedFolder`) as
                                                     one git commit with a fixed author.
  - `POST /api/validate-yaml`                       -> always valid (called for README.md by
                                                     `create_commit`/`upload_file`).

  Because every file is "regular", the client sends contents inline (base64) in the commit
  payload: large-file LFS / Xet transfer is NOT covered offline (`lfsFile` operations are
  rejected with 400). Write routes require an `Authorization: Bearer <any token>` header, like
  the Hub; the token itself is never checked nor logged. Not supported: pull requests
  (`create_pr`), branches/tags creation, deleting repos, private/gated repos, `.gitignore`
  filtering, whoami.

* **olah quirks patched in front of it** (requests rewritten before olah sees them):

  - `GET /api/{type}s/{org}/{name}` (repo info without a revision, e.g. `model_info()`,
    `repo_exists()`) answers 401 RepoNotFound in olah offline mode for local git mirrors (olah
    looks up "latest" in its proxy cache only) -> rewritten to `.../revision/HEAD`.
  - `.../tree/{rev}` without a trailing slash (`list_repo_tree` of the root, used by
    `snapshot_download`) is a 307 in olah -> rewritten to `.../tree/{rev}/`.
  - A missing file or revision makes olah answer 401 RepoNotFound (HEAD) or 500 (GET) -> for
    `/resolve/`, `/revision/`, `/tree/` and `/commits/` requests on an existing repo, we answer
    like the Hub: 404 with `X-Error-Code: EntryNotFound` / `RevisionNotFound`.
  - olah's `/commits/{rev}` lists authors as `{"name": ...}` but huggingface_hub reads
    `["user"]` (`list_repo_commits` crashes) -> served from `git log` here instead.

Process layout: the parent binds a listening socket on 127.0.0.1:0 (the kernel picks a free
port, no race) and hands its file descriptor to the child (`python hub_server.py _serve`), which
runs uvicorn with one ASGI app: write routes + rewrites, everything else to olah's FastAPI app
in-process. No HTTP proxy hop. Startup waits until the server answers HTTP, with a timeout. The
child exits on SIGTERM (sent by `__exit__`) or when the parent dies (it watches its stdin pipe),
so no orphan is left behind. Logs (uvicorn access log included) go to `{root}/hub_server.log`.

Manual use: `python tests/hub_server.py` starts one in a temp dir and prints the URL.
"""

import argparse
import base64
import binascii
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

# Repo type as sent by the client ("model") -> plural used in URLs and in olah's mirror layout.
REPO_TYPE_PLURALS = {"model": "models", "dataset": "datasets", "space": "spaces"}
DEFAULT_BRANCH = "main"
# `create_repo("name")` without a namespace puts the repo under the (single, fake) user.
DEFAULT_NAMESPACE = "test-user"
# Fixed identity so commits do not depend on the machine's git config.
GIT_AUTHOR = {"name": "hub-server", "email": "hub-server@localhost"}
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HubServer:
    """Context manager running the loopback Hub; `url` is the value for `HF_ENDPOINT`.

    `root` is a directory owned by the server (e.g. pytest's `tmp_path`): git repos, olah's
    config and cache, and the log file live under it.
    """

    def __init__(self, root: Path, *, startup_timeout: float = STARTUP_TIMEOUT_S) -> None:
        self.root = Path(root)
        self.url = ""
        self.startup_seconds = 0.0
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "hub_server.log"

    def __enter__(self) -> "HubServer":
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        # Binding here (port 0) rather than in the child means the port is known up front and
        # cannot be taken by someone else between "pick a free port" and "listen".
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            port = sock.getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            _write_olah_config(self.root, port)
            with self.log_path.open("ab") as log:
                fd = str(sock.fileno())
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "_serve",
                        str(self.root),
                        "--fd",
                        fd,
                    ],
                    pass_fds=[sock.fileno()],
                    # The child treats EOF on this pipe as "parent is gone, exit".
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        try:
            self._wait_until_ready()
        except BaseException:
            self._stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _wait_until_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"hub server exited with code {self._proc.returncode}:\n{self._log_tail()}"
                )
            try:
                # The socket already listens, so this connects at once and simply waits until
                # the child has imported olah and uvicorn accepts.
                with urllib.request.urlopen(f"{self.url}/api/_hub_server/health", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise TimeoutError(
            f"hub server not ready after {self._startup_timeout:.0f}s:\n{self._log_tail()}"
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # uvicorn shuts down gracefully on SIGTERM
            try:
                proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()

    def _log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"


def _write_olah_config(root: Path, port: int) -> None:
    """Olah reads its settings from a TOML file (`OLAH_CONFIG`), see `olah/configs.py`."""
    (root / "mirrors").mkdir(exist_ok=True)

    def q(value: str) -> str:  # JSON string escapes are valid TOML basic-string escapes
        return json.dumps(value)

    netloc = f"127.0.0.1:{port}"
    (root / "olah.toml").write_text(
        "[basic]\n"
        f"host = {q('127.0.0.1')}\n"
        f"port = {port}\n"
        # Olah's own proxy cache: unused offline, but keep it out of the working directory.
        f"repos-path = {q(str(root / 'olah-cache'))}\n"
        f"mirror-netloc = {q(netloc)}\n"
        f"mirror-lfs-netloc = {q(netloc)}\n"
        f"mirrors-path = [{q(str(root / 'mirrors'))}]\n"
        "\n[accessibility]\n"
        # Never contact huggingface.co; serve only what is in the local git mirrors.
        "offline = true\n"
    )


# --------------------------------------------------------------------------------------------
# Child process side: git storage, write API, olah quirk fixes.
# --------------------------------------------------------------------------------------------


class HubError(Exception):
    """An error answered the Hub way: status code plus `X-Error-Code`/`X-Error-Message`."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def headers(self) -> dict[str, str]:
        headers = {"X-Error-Message": self.message}
        if self.code is not None:
            headers["X-Error-Code"] = self.code
        return headers


@dataclass(frozen=True)
class RepoRef:
    type_plural: str  # "models" | "datasets" | "spaces"
    org: str
    name: str

    @property
    def repo_id(self) -> str:
        return f"{self.org}/{self.name}"

    def web_url(self, base_url: str) -> str:
        prefix = "" if self.type_plural == "models" else f"{self.type_plural}/"
        return f"{base_url}/{prefix}{self.repo_id}"


class GitStore:
    """Bare git repos in olah's mirror layout, written with git plumbing commands.

    Plumbing (a throwaway index, `commit-tree`, `update-ref` with the expected old value) works
    on bare repos, on any branch, and makes the branch update atomic.
    """

    def __init__(self, mirrors: Path) -> None:
        self.mirrors = mirrors
        # Commits to one repo must not interleave; one lock is plenty for tests.
        self._lock = threading.Lock()

    def git_dir(self, repo: RepoRef) -> Path:
        return self.mirrors / repo.type_plural / repo.org / repo.name

    def exists(self, repo: RepoRef) -> bool:
        return self.git_dir(repo).is_dir()

    def _git(
        self, repo: RepoRef, *args: str, input: bytes | None = None, index: Path | None = None
    ) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Ignore the machine's git config: results must not depend on it.
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "TZ": "UTC",
            "GIT_AUTHOR_NAME": GIT_AUTHOR["name"],
            "GIT_AUTHOR_EMAIL": GIT_AUTHOR["email"],
            "GIT_COMMITTER_NAME": GIT_AUTHOR["name"],
            "GIT_COMMITTER_EMAIL": GIT_AUTHOR["email"],
        }
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        result = subprocess.run(
            ["git", f"--git-dir={self.git_dir(repo)}", *args],
            input=input,
            env=env,
            capture_output=True,
            check=True,
        )
        return result.stdout.decode().strip()

    def create(self, repo: RepoRef) -> bool:
        """Create the repo with an empty first commit; False if it already exists."""
        with self._lock:
            git_dir = self.git_dir(repo)
            if git_dir.exists():
                return False
            git_dir.parent.mkdir(parents=True, exist_ok=True)
            init = ["git", "init", "--quiet", "--bare", f"--initial-branch={DEFAULT_BRANCH}"]
            subprocess.run(
                [*init, str(git_dir)],
                env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
                check=True,
                capture_output=True,
            )
            # olah needs a commit to resolve `main`. (The real Hub's first commit adds a
            # `.gitattributes`; we keep the tree empty so listings show only uploaded files.)
            empty_tree = self._git(repo, "hash-object", "-t", "tree", "-w", "--stdin", input=b"")
            commit = self._git(repo, "commit-tree", empty_tree, "-m", "initial commit")
            self._git(repo, "update-ref", f"refs/heads/{DEFAULT_BRANCH}", commit, "")
            return True

    def resolve(self, repo: RepoRef, revision: str) -> str | None:
        try:
            return self._git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
        except subprocess.CalledProcessError:
            return None

    def is_file(self, repo: RepoRef, commit: str, path: str) -> bool:
        try:
            return self._git(repo, "cat-file", "-t", f"{commit}:{path}") == "blob"
        except subprocess.CalledProcessError:
            return False

    def blob_ids(self, repo: RepoRef, commit: str) -> dict[str, str]:
        """path -> git blob sha1, i.e. what the client computes as a regular file's `_local_oid`."""
        out = self._git(repo, "ls-tree", "-r", "-z", commit)
        ids = {}
        for entry in filter(None, out.split("\0")):
            meta, path = entry.split("\t", 1)
            ids[path] = meta.split()[2]
        return ids

    def log(self, repo: RepoRef, commit: str) -> list[dict[str, Any]]:
        """Commit history in the Hub's `/commits/{rev}` JSON shape, newest first."""
        fields = ("%H", "%an", "%ad", "%s", "%b")
        # The client parses dates strictly as "%Y-%m-%dT%H:%M:%S.%fZ" (_git runs with TZ=UTC).
        date_format = "--date=format-local:%Y-%m-%dT%H:%M:%S.000Z"
        out = self._git(repo, "log", date_format, f"--format={'%x00'.join(fields)}%x1e", commit)
        items = []
        for record in filter(None, (r.strip("\n") for r in out.split("\x1e"))):
            oid, author, date, title, body = record.split("\0")
            items.append(
                {
                    "id": oid,
                    "title": title,
                    "message": body.strip(),
                    "authors": [{"user": author}],
                    "date": date,
                }
            )
        return items

    def branch_head(self, repo: RepoRef, branch: str) -> str:
        if not self.exists(repo):
            raise HubError(404, "RepoNotFound", "Repository not found")
        head = self.resolve(repo, f"refs/heads/{branch}")
        if head is None:
            # The Hub only commits to existing branches (create_branch first).
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        return head

    def commit(
        self,
        repo: RepoRef,
        branch: str,
        header: dict[str, Any],
        operations: list[tuple[str, dict[str, Any]]],
    ) -> str:
        with self._lock, tempfile.TemporaryDirectory() as tmp:
            parent = self.branch_head(repo, branch)
            expected = header.get("parentCommit")
            if expected and not parent.startswith(expected):
                raise HubError(412, None, f"parentCommit {expected} is not the head of {branch}")
            index = Path(tmp) / "index"
            self._git(repo, "read-tree", parent, index=index)
            for key, value in operations:
                path = _clean_repo_path(value.get("path", ""))
                if key == "file":
                    content = _decode_content(value)
                    blob = self._git(repo, "hash-object", "-w", "--stdin", input=content)
                    self._update_index(repo, index, f"100644 {blob}\t{path}")
                elif key in ("deletedFile", "deletedFolder"):
                    pathspec = [path] if key == "deletedFile" else [f"{path.rstrip('/')}/"]
                    present = self._git(repo, "ls-files", "-z", "--", *pathspec, index=index)
                    if not present:
                        raise HubError(
                            404, "EntryNotFound", f"A file with this name doesn't exist: {path}"
                        )
                    # Mode 0 removes the path from the index; update-index --force-remove would
                    # need a work tree, which a bare repo does not have.
                    removals = (f"0 {'0' * 40}\t{p}" for p in filter(None, present.split("\0")))
                    self._update_index(repo, index, "\n".join(removals))
                elif key == "lfsFile":
                    raise HubError(400, None, "LFS/Xet uploads are not supported by the test hub")
                else:
                    raise HubError(400, None, f"Unknown commit operation: {key}")
            tree = self._git(repo, "write-tree", index=index)
            message = header.get("summary") or "Commit"
            if header.get("description"):
                message += "\n\n" + header["description"]
            commit = self._git(repo, "commit-tree", tree, "-p", parent, "-m", message)
            # Compare-and-swap on the branch: never lose a concurrent commit silently.
            self._git(repo, "update-ref", f"refs/heads/{branch}", commit, parent)
            return commit

    def _update_index(self, repo: RepoRef, index: Path, index_info: str) -> None:
        self._git(
            repo, "update-index", "--index-info", input=index_info.encode() + b"\n", index=index
        )


def _clean_repo_path(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or ".." in parts or ".git" in parts:
        raise HubError(400, None, f"Invalid path in repo: {path!r}")
    return path


def _decode_content(value: dict[str, Any]) -> bytes:
    if value.get("encoding", "base64") != "base64":
        raise HubError(400, None, f"Unsupported encoding: {value.get('encoding')}")
    try:
        return base64.b64decode(value.get("content", ""), validate=True)
    except binascii.Error as err:
        raise HubError(400, None, f"Invalid base64 content for {value.get('path')}") from err


def _repo_from_path(type_plural: str, org: str, name: str) -> RepoRef:
    if type_plural not in REPO_TYPE_PLURALS.values():
        raise HubError(404, None, f"Unknown repo type: {type_plural}")
    return RepoRef(type_plural, org, name)


def build_write_app(store: GitStore) -> ASGIApp:
    """The minimal write API (see module docstring). FastAPI is imported in the child only."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(HubError)
    async def hub_error(_: Request, err: HubError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers())

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        # Like the Hub: writes need a token. Any Bearer value is accepted and never logged.
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse(
                {"error": "Invalid credentials in Authorization header"},
                status_code=401,
                headers={"X-Error-Message": "Invalid credentials in Authorization header"},
            )
        return await call_next(request)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.post("/api/repos/create")
    async def create_repo(request: Request) -> JSONResponse:
        payload = await request.json()
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPE_PLURALS:
            raise HubError(400, None, f"Invalid repo type: {repo_type}")
        repo = RepoRef(
            REPO_TYPE_PLURALS[repo_type],
            payload.get("organization") or DEFAULT_NAMESPACE,
            _clean_repo_path(payload.get("name", "")),
        )
        url = repo.web_url(base_url(request))
        if not await run_in_threadpool(store.create, repo):
            return JSONResponse(
                {"error": "You already created this repo", "url": url}, status_code=409
            )
        return JSONResponse({"url": url, "name": repo.repo_id, "id": repo.repo_id})

    @app.post("/api/validate-yaml")
    async def validate_yaml() -> dict[str, list[Any]]:
        return {"errors": [], "warnings": []}

    @app.post("/api/{type_plural}/{org}/{name}/preupload/{revision}")
    async def preupload(
        type_plural: str, org: str, name: str, revision: str, request: Request
    ) -> dict[str, Any]:
        if request.query_params.get("create_pr"):
            raise HubError(400, None, "Pull requests are not supported by the test hub")
        repo = _repo_from_path(type_plural, org, name)
        head = await run_in_threadpool(store.branch_head, repo, revision)
        existing = await run_in_threadpool(store.blob_ids, repo, head)
        files = (await request.json()).get("files", [])
        # "regular" for everything: contents come inline in the commit, no LFS/Xet transfer.
        return {
            "files": [
                {
                    "path": f["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": existing.get(f["path"]),
                }
                for f in files
            ]
        }

    @app.post("/api/{type_plural}/{org}/{name}/commit/{revision}")
    async def commit(
        type_plural: str, org: str, name: str, revision: str, request: Request
    ) -> dict[str, Any]:
        if request.query_params.get("create_pr"):
            raise HubError(400, None, "Pull requests are not supported by the test hub")
        repo = _repo_from_path(type_plural, org, name)
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, None, "Commit payload must start with a header line")
        operations = [(line["key"], line.get("value", {})) for line in lines[1:]]
        oid = await run_in_threadpool(
            store.commit, repo, revision, lines[0].get("value", {}), operations
        )
        return {
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{repo.web_url(base_url(request))}/commit/{oid}",
            "commitMessage": lines[0].get("value", {}).get("summary", ""),
            "pullRequestUrl": None,
        }

    return app


_WRITE_ROUTE = re.compile(
    r"^/api/(repos/create|validate-yaml|[^/]+/[^/]+/[^/]+/(preupload|commit)/[^/]+)$"
)
_REPO_INFO = re.compile(r"^/api/(models|datasets|spaces)/[^/]+/[^/]+$")
_TREE_ROOT = re.compile(r"^/api/(models|datasets|spaces)/[^/]+/[^/]+/tree/[^/]+$")
# API routes whose revision olah cannot report as missing (it answers 401 RepoNotFound).
_REVISION_ROUTE = re.compile(
    r"^/api/(?P<t>models|datasets|spaces)/(?P<o>[^/]+)/(?P<n>[^/]+)"
    r"/(?:revision|tree|commits)/(?P<rev>[^/]+)(?:/.*)?$"
)
_COMMITS = re.compile(
    r"^/api/(?P<t>models|datasets|spaces)/(?P<o>[^/]+)/(?P<n>[^/]+)/commits/(?P<rev>[^/]+)$"
)
_RESOLVE = re.compile(
    r"^/(?:(?P<t>datasets|spaces)/)?(?P<o>[^/]+)/(?P<n>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"
)


def build_app(store: GitStore, olah_app: ASGIApp) -> ASGIApp:
    """One ASGI app: write routes, olah quirk fixes, and olah for everything else."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse

    write_app = build_write_app(store)

    def hub_error_for_missing(path: str) -> HubError | None:
        """Hub-style 404s for a missing revision/file of an existing repo (olah says 401/500)."""
        match = _RESOLVE.match(path) or _REVISION_ROUTE.match(path)
        if match is None:
            return None
        repo = RepoRef(match["t"] or "models", match["o"], match["n"])
        if not store.exists(repo):
            return None  # olah's 401 RepoNotFound is what the Hub answers too
        commit = store.resolve(repo, match["rev"])
        if commit is None:
            return HubError(404, "RevisionNotFound", f"Invalid rev id: {match['rev']}")
        if "path" in match.groupdict() and not store.is_file(repo, commit, match["path"]):
            return HubError(404, "EntryNotFound", f"{match['path']} does not exist on the Hub")
        return None

    def list_commits(path: str) -> list[dict[str, Any]] | None:
        """olah lists commits as `authors: [{"name": ...}]`; huggingface_hub reads `["user"]`."""
        match = _COMMITS.match(path)
        if match is None:
            return None
        repo = RepoRef(match["t"], match["o"], match["n"])
        commit = store.resolve(repo, match["rev"]) if store.exists(repo) else None
        return None if commit is None else store.log(repo, commit)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await olah_app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/api/_hub_server/health":
            await PlainTextResponse("ok")(scope, receive, send)
            return
        if method == "POST" and _WRITE_ROUTE.match(path):
            await write_app(scope, receive, send)
            return
        if method in ("GET", "HEAD"):
            if _REPO_INFO.match(path):
                path += "/revision/HEAD"
            elif _TREE_ROOT.match(path):
                path += "/"
            # git lookups block: keep them off the event loop (downloads run in parallel).
            error = await run_in_threadpool(hub_error_for_missing, path)
            if error is not None:
                response = JSONResponse(
                    {"error": error.message}, status_code=error.status, headers=error.headers()
                )
                await response(scope, receive, send)
                return
            commits = await run_in_threadpool(list_commits, path)
            if commits is not None:
                await JSONResponse(commits)(scope, receive, send)
                return
            if path != scope["path"]:
                scope = {**scope, "path": path, "raw_path": urllib.parse.quote(path).encode()}
        await olah_app(scope, receive, send)

    return app


def _exit_when_parent_dies(stdin: IO[bytes]) -> None:
    stdin.read()  # returns at EOF: the parent closed the pipe or died
    os.kill(os.getpid(), signal.SIGTERM)


def serve(root: Path, fd: int) -> None:
    """Child process entry point: serve on the inherited listening socket until SIGTERM."""
    # olah configures its module-level app from these variables at import time.
    os.environ["OLAH_CONFIG"] = str(root / "olah.toml")
    os.environ["OLAH_LOG_PATH"] = str(root / "olah-logs")
    import uvicorn
    from olah.server import app as olah_app

    threading.Thread(target=_exit_when_parent_dies, args=(sys.stdin.buffer,), daemon=True).start()
    app = build_app(GitStore(root / "mirrors"), olah_app)
    # lifespan off: olah's startup hooks only matter when it proxies huggingface.co.
    config = uvicorn.Config(app, lifespan="off", log_level="info")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_serve", help="internal: run the server on an inherited socket")
    child.add_argument("root", type=Path)
    child.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "_serve":
        serve(args.root, args.fd)
        return
    with tempfile.TemporaryDirectory(prefix="hub-server-") as tmp, HubServer(Path(tmp)) as hub:
        print(f"HF_ENDPOINT={hub.url}  (root: {tmp}, started in {hub.startup_seconds:.2f}s)")
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
