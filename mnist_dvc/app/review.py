"""The page of `mnist-dvc review`: a person walks a review queue one digit at a time and says, for
each, whether its MNIST label is right, which digit it should be, or that no single label fits.

`create_app(queue_folder, verdicts_path)` reads the queue (`queue_folder.read_queue`) once and
returns a FastAPI app with four routes:

- `GET /`: the page, one static file (mnist_dvc/app/static/review.html, inline JS and CSS, no
  request leaves the machine; a Content-Security-Policy header enforces it);
- `GET /api/queue`: the queue's digits in review order, each with its fields, its probabilities,
  the addresses of its pictures and the verdict `verdicts_path` already holds for it (or null),
  read from the file on every request, so the page always starts from what is saved;
- `GET /api/pictures/<split>/<index>/<digit|explained>`: a queued digit's pictures, and no other file;
- `POST /api/verdict`: JSON `{"split", "index", "verdict", "corrected_label"}` -> the verdict as
  saved. The digit must be in the queue and its given label is the queue's; `verdict` is one of
  `verdicts.VERDICTS`; `corrected_label` is a digit 0-9 other than the given label for `wrong`,
  and null or absent otherwise. It is recorded at once (`verdicts.record`: the whole file rewritten
  atomically, a second verdict on a digit replacing the first), timed now, in UTC.

Every failure is JSON `{"error": "<one line>"}` and leaves the file as it was: 400 for a body that
is not a JSON object with exactly those fields of the right types (or a foreign Host header), 404
for a digit or picture the queue does not hold, 411 without a Content-Length, 413 for a body over
`MAX_BODY_BYTES`, 415 for a body not sent as application/json, 422 for a value out of its range
(a label outside 0-9, an unknown verdict word, a correction equal to the given label), 500 for a
verdicts file that became unreadable while the page ran (its `UserError`, which names the row)
or a bug. None of them stops the server.

Two guards keep other web pages away from the file: a verdict must come as application/json, which
a page of another site can only send after a CORS preflight that this server never grants; and
when bound to this machine only, a request must name 127.0.0.1, localhost or [::1] as its Host,
so that a site whose name is made to resolve to 127.0.0.1 (DNS rebinding) gets no answer.

`serve(queue_folder, verdicts_path)` runs that app with uvicorn on 127.0.0.1:8000.
"""

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mnist_dvc import NUM_CLASSES
from mnist_dvc.app.queue_folder import QueuedDigit, QueueFolder, read_queue
from mnist_dvc.errors import UserError, one_line
from mnist_dvc.io import verdicts

PAGE = Path(__file__).parent / "static" / "review.html"
MAX_BODY_BYTES = 1024  # a verdict is under 100 bytes of JSON
FIELDS = ("split", "index", "verdict", "corrected_label")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# The page's scripts and styles are inline, its pictures come from this server, and nothing may frame it.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; "
                           "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


def now() -> str:
    """This second in UTC, ISO 8601 with a Z: the `time` of a verdict."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, message: str) -> JSONResponse:
    """The JSON answer of every failure: `{"error": message}`, `message` on one line (`errors.one_line`)."""
    return JSONResponse({"error": one_line(message)}, status_code=status)


def saved_verdicts(queue: QueueFolder, path: Path) -> dict[tuple[str, int], dict]:
    """The verdicts of `path` on the queue's digits, by (split, index), as the API shows them;
    `UserError` when one was given on a label other than the queue's (made on other data)."""
    table = verdicts.read_verdicts(path)
    found = {}
    for split, index, given, verdict, corrected, time in table.itertuples(index=False, name=None):
        digit = queue.find(split, int(index))
        if digit is None:
            continue
        if digit.given_label != given:
            raise UserError(f"{path}: {split} digit {index}: given_label = {given}, but the queue {queue.folder} gives "
                            f"{digit.given_label}; the verdict was made on other data")
        found[split, int(index)] = {"verdict": verdict, "corrected_label": None if pd.isna(corrected) else int(corrected), "time": time}
    return found


def _shown(digit: QueuedDigit, verdict: dict | None) -> dict:
    """One queued digit as `GET /api/queue` lists it."""
    place = f"/api/pictures/{digit.split}/{digit.index}"
    return {"rank": digit.rank, "split": digit.split, "index": digit.index, "given_label": digit.given_label,
            "suggested_label": digit.suggested_label, "label_quality": digit.label_quality, "flagged": digit.flagged,
            "margin": digit.margin, "entropy": digit.entropy, "probs": list(digit.probs),
            "digit_url": f"{place}/digit", "explained_url": f"{place}/explained" if digit.explained else None,
            "verdict": verdict}


async def _json_body(request: Request) -> object:
    """The request's JSON, read only after its declared size and type are checked."""
    try:
        length = int(request.headers["content-length"])
    except (KeyError, ValueError):
        raise HTTPException(411, "the request must declare its size (Content-Length)") from None
    if length > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body too large: {length:,} bytes; a verdict takes at most {MAX_BODY_BYTES:,}")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, "send the verdict as JSON (Content-Type: application/json)")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body too large: {len(body):,} bytes; a verdict takes at most {MAX_BODY_BYTES:,}")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HTTPException(400, f"request body: not valid JSON ({error})") from None


def parse_verdict(body: object, queue: QueueFolder) -> tuple[QueuedDigit, str, int | None]:
    """The digit, verdict and corrected label a request's JSON `body` asks to record, checked
    against the queue; `HTTPException` with the status of the module docstring otherwise."""
    if not isinstance(body, dict):
        raise HTTPException(400, f"request body: expected a JSON object with the fields {', '.join(FIELDS)}")
    unknown = sorted(set(body) - set(FIELDS))
    missing = [field for field in FIELDS[:3] if field not in body]
    if unknown or missing:
        problem = f"unknown field {unknown[0]!r}" if unknown else f"missing field {missing[0]!r}"
        raise HTTPException(400, f"request body: {problem}; expected the fields {', '.join(FIELDS)}")
    split, index, verdict, corrected = (body.get(field) for field in FIELDS)
    for field, value, kind in (("split", split, str), ("index", index, int), ("verdict", verdict, str)):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise HTTPException(400, f"{field} = {json.dumps(value)}: expected {'a string' if kind is str else 'a whole number'}")
    if corrected is not None and (not isinstance(corrected, int) or isinstance(corrected, bool)):
        raise HTTPException(400, f"corrected_label = {json.dumps(corrected)}: expected a whole number or null")
    if split not in verdicts.SPLIT_SIZES:
        raise HTTPException(422, f"split = {split!r}: expected train or test")
    digit = queue.find(split, index)
    if digit is None:
        raise HTTPException(404, f"{split} digit {index}: not in the queue {queue.folder}")
    if verdict not in verdicts.VERDICTS:
        raise HTTPException(422, f"verdict = {verdict!r}: expected one of {', '.join(verdicts.VERDICTS)}")
    if verdict != "wrong":
        if corrected is not None:
            raise HTTPException(422, f"corrected_label = {corrected}: only a `wrong` verdict has one; send null")
        return digit, verdict, None
    if corrected is None:
        raise HTTPException(422, "corrected_label: a `wrong` verdict needs the label the digit should have, 0-9")
    if not 0 <= corrected < NUM_CLASSES:
        raise HTTPException(422, f"corrected_label = {corrected}: expected a digit from 0 to {NUM_CLASSES - 1}")
    if corrected == digit.given_label:
        raise HTTPException(422, f"corrected_label = {corrected} is the given label of {split} digit {index}; "
                                 f"a label that is right takes the verdict `right`")
    return digit, verdict, corrected


def _host_name(request: Request) -> str:
    """The name the request's Host header gives, without its port (brackets of IPv6 removed)."""
    return urlsplit("//" + request.headers.get("host", "")).hostname or ""


def create_app(queue_folder: str | Path, verdicts_path: str | Path, allowed_hosts: tuple[str, ...] | None = LOCAL_HOSTS) -> FastAPI:
    """The app serving the page and its API for the queue in `queue_folder`, recording verdicts in
    `verdicts_path`. `UserError` at once when the queue or the verdicts file is unreadable, or they
    disagree on a given label. `allowed_hosts`: the Host names answered (None: any)."""
    queue = read_queue(queue_folder)
    verdicts_path = Path(verdicts_path)
    saved_verdicts(queue, verdicts_path)
    writing = threading.Lock()  # one read-modify-write of the file at a time
    app = FastAPI(title="Label review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def only_local_names(request: Request, call_next):
        if allowed_hosts is not None and _host_name(request) not in allowed_hosts:
            return _error(400, f"Host {request.headers.get('host', '')!r}: this page answers to {', '.join(allowed_hosts)} only")
        return await call_next(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, error.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, f"bad request: {error.errors()[0].get('msg', 'invalid')}")

    @app.exception_handler(UserError)
    async def broken_file(request: Request, error: UserError) -> JSONResponse:
        return _error(500, str(error))

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(error).__name__}); the server log has the details")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.get("/api/queue")
    def listing() -> dict:
        given = saved_verdicts(queue, verdicts_path)
        return {"queue": str(queue.folder), "verdicts_file": str(verdicts_path),
                "digits": [_shown(digit, given.get((digit.split, digit.index))) for digit in queue.digits]}

    @app.get("/api/pictures/{split}/{index}/{kind}")
    def picture(split: str, index: str, kind: str) -> FileResponse:
        digit = queue.find(split, int(index)) if index.isascii() and index.isdigit() else None
        if digit is None:
            raise HTTPException(404, f"{split} digit {index}: not in the queue {queue.folder}")
        path = {"digit": digit.digit, "explained": digit.explained}.get(kind)
        if path is None:
            raise HTTPException(404, f"{split} digit {index}: no picture {kind!r} (the queue has digit and explained ones)")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})

    def save(digit: QueuedDigit, verdict: str, corrected: int | None) -> dict:
        with writing:
            time = now()
            verdicts.record(verdicts_path, digit.split, digit.index, digit.given_label, verdict, corrected, time)
        return {"split": digit.split, "index": digit.index, "verdict": verdict, "corrected_label": corrected, "time": time}

    @app.post("/api/verdict")
    async def give(request: Request) -> dict:
        digit, verdict, corrected = parse_verdict(await _json_body(request), queue)
        return await run_in_threadpool(save, digit, verdict, corrected)

    return app


def serve(queue_folder: str | Path, verdicts_path: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serves the review page (`create_app`) at http://host:port/ until interrupted (127.0.0.1 by
    default: only this machine can reach it, and only under its local names)."""
    import uvicorn

    app = create_app(queue_folder, verdicts_path, LOCAL_HOSTS if host in LOCAL_HOSTS else None)
    shown = f"[{host}]" if ":" in host else host
    print(f"Label review of {queue_folder}, verdicts to {verdicts_path}: open http://{shown}:{port}/ (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
