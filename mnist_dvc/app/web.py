"""The local web page of "Your own digits": draw a digit or upload a photo of one, and see at once
the 28x28 digit the model sees, its ten probabilities and whether it finds the digit ambiguous.

`create_app(folder)` loads the model once, compiles it with one warm-up prediction and returns a
FastAPI app with two routes:

- `GET /`: the page, one static file (mnist_dvc/app/static/index.html, inline JS and CSS, no request
  leaves the machine; a Content-Security-Policy header enforces it);
- `POST /api/predict`: a picture as the multipart field `file` (the page sends its canvas as a PNG
  the same way) -> JSON `digit28` (28 rows of 28 ints, what the model sees), `probs` (10 floats,
  calibrated with the ambiguous stage's temperature, the terms of its cutoffs) and the fields of
  `verdict`. Every failure is JSON `{"error": "<one line>"}`: 400 for a request without a file or
  with an empty one, 411 without a Content-Length, 413 over the size limit in bytes or in pixels
  (`from_picture.MAX_PIXELS`, read from the picture's header), 422 for a file that is not a picture
  or holds no digit (the `UserError` of `prepare_digit`), 500 for a bug. None of them stops the server.

`serve(folder)` runs that app with uvicorn on 127.0.0.1:8000.
"""

from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from mnist_dvc.analysis.ambiguity import SCORES, verdicts
from mnist_dvc.analysis.answers import predictions
from mnist_dvc.analysis.calibration import calibrated_probs
from mnist_dvc.digits.from_picture import SIDE, TooManyPixels, prepare_digit
from mnist_dvc.errors import UserError, one_line
from mnist_dvc.models.saved import load_classifier, preparation

PAGE = Path(__file__).parent / "static" / "index.html"
MAX_UPLOAD_BYTES = 5_000_000  # 5 MB: a phone photo fits, a mistake such as a video does not
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and headers around the file, allowed on top of the limit
# The page's scripts and styles are inline and it talks to this server only: nothing else may load.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src 'self' data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'")


def verdict(probs: np.ndarray, cutoff: dict[str, float]) -> dict:
    """What the model says about one unlabelled digit, from its probabilities float (10,): the
    `answers.predictions` columns, `ambiguous` (bool) and `reasons`, one sentence per definition
    of the `ambiguous` stage under which the digit would have made that stage's list
    (`ambiguity.verdicts` with `cutoff`, the stage's cutoffs)."""
    table = predictions(np.asarray(probs, dtype=np.float64)[None])
    under = verdicts(table, cutoff).iloc[0]
    row = table.to_dict("records")[0]
    reasons = []
    for name in filter(None, under.split("+")):
        column, higher = SCORES[name]
        reasons.append(f"{name}: {column} {row[column]:.3f} is {'above' if higher else 'below'} {cutoff[name]:.3f}, "
                       "where the ambiguous stage's list of test digits ends")
    return {**row, "ambiguous": bool(reasons), "reasons": reasons}


class Predictor:
    """The model of one folder, loaded once: picture bytes -> the JSON answer of /api/predict."""

    def __init__(self, model_folder: Path, cutoff: dict[str, float], temperature: float):
        """Loads the model and how its digits were prepared (model.json's `preparation`), then
        predicts one blank digit so that the jit compilation happens now, not on the first request.
        `cutoff` and `temperature`: `ambiguity.load_cutoffs` of the ambiguous stage's summary.json."""
        self.preparation = preparation(model_folder)
        self.cutoff = cutoff
        self.temperature = temperature
        self.classifier = load_classifier(model_folder)
        self.probabilities(np.zeros((SIDE, SIDE), dtype=np.uint8))

    def probabilities(self, digit: np.ndarray) -> np.ndarray:
        """Calibrated probabilities float (10,) for one uint8 (28, 28) digit, predicted as a batch of
        one (one compiled shape), then scaled by the temperature (`calibration.calibrated_probs`)."""
        return calibrated_probs(self.classifier(digit[None]), self.temperature).astype(np.float64)[0]

    def __call__(self, data: bytes, name: str) -> dict:
        """`digit28`, `probs` and the `verdict` of the picture in `data`; `UserError` naming `name`
        when it holds no readable digit."""
        digit = prepare_digit(data, self.preparation, name=name)
        probs = self.probabilities(digit)
        return {"digit28": digit.astype(int).tolist(), "probs": [float(p) for p in probs], **verdict(probs, self.cutoff)}


def _error(status: int, message: str) -> JSONResponse:
    """The JSON answer of every failure: `{"error": message}`, `message` on one line (`errors.one_line`)."""
    return JSONResponse({"error": one_line(message)}, status_code=status)


def _check_declared_length(request: Request, limit: int) -> None:
    """Checks the request's Content-Length before its body is read: 411 when missing or not a
    number, 413 when more than `limit` bytes of picture plus the form's own overhead."""
    try:
        length = int(request.headers["content-length"])
    except (KeyError, ValueError):
        raise HTTPException(411, "the upload must declare its size (Content-Length)") from None
    if length > limit + FORM_OVERHEAD_BYTES:
        raise HTTPException(413, f"upload too large: {length / 1e6:.1f} MB; the limit is {limit / 1e6:g} MB")


async def _uploaded(request: Request, limit: int) -> tuple[bytes, str]:
    """The bytes and name of the multipart field `file`: 400 when there is none or it is empty,
    413 when it is larger than `limit`."""
    _check_declared_length(request, limit)
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "no picture: send it as the multipart form field `file`")
        data = await upload.read(limit + 1)
        name = upload.filename or "upload"
    if not data:
        raise HTTPException(400, f"{name}: empty file")
    if len(data) > limit:
        raise HTTPException(413, f"{name}: too large; the limit is {limit / 1e6:g} MB")
    return data, name


def create_app(model_folder: Path, cutoff: dict[str, float], temperature: float,
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The app serving the page and /api/predict for the model in `model_folder` (loaded and
    compiled here, once; `UserError` when its files are missing or corrupt), calibrating its
    probabilities with `temperature` and judging ambiguity with `cutoff` (`ambiguity.load_cutoffs` of
    the ambiguous stage's summary)."""
    predictor = Predictor(Path(model_folder), cutoff, temperature)
    app = FastAPI(title="Your own digits", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, error.detail)

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        return _error(413 if isinstance(error, TooManyPixels) else 422, str(error))

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(error).__name__}); the server log has the details")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.post("/api/predict")
    async def predict(request: Request) -> dict:
        data, name = await _uploaded(request, max_upload_bytes)
        return await run_in_threadpool(predictor, data, name)

    return app


def serve(model_folder: Path, cutoff: dict[str, float], temperature: float, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serves the page for the model in `model_folder` (`create_app`) at http://host:port/ until
    interrupted (127.0.0.1 by default: only this machine can reach it)."""
    import uvicorn

    app = create_app(model_folder, cutoff, temperature)
    print(f"Your own digits: open http://{host}:{port}/ (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
