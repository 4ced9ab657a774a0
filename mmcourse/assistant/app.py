"""The customer-service assistant as a web app (FastAPI), built on chapter 12's serving code.

    POST /chat    JSON {"session": id, "text": message}
                  -> {"reply", "action", "intent", "confidence", "slots", "escalate", "reason",
                      "article_id", "article_title", "article_score", "unsure", "anger", "latency_ms"}
    POST /image   multipart: "image" (PNG or JPEG), optional "session"
                  -> {"recognised", "item", "best_guess", "confidence", "distance", "max_distance", "reply", ...}
    POST /audio   multipart: "audio" (WAV), optional "session", "kind" ("words": a question, read by
                  pocketsphinx; "digits": a spoken number, read by chapter 11's recogniser)
                  -> {"transcript", "kind", "engine", the /chat fields of the turn, "reply_audio":
                      the reply spoken by espeak-ng, a base64 WAV data URL}
    GET  /health  -> {"status": "ok", "components", "sessions", "max_sessions"}
    GET  /        -> the page (``static/index.html``: plain HTML and JavaScript, nothing from outside)

Every upload is checked (type by its magic bytes, body size, picture size, audio duration) and
refused with a 4xx and ``{"error": ...}`` naming the field and the fix (chapter 12's
``BadInput``, ``BodyLimit``, ``read_files``, ``read_wav``). Uploads are read into memory and
dropped after the request (Starlette spools a part over 1 MB to a temporary file, which
``read_files`` closes, and so deletes, before the models run); nothing is stored or executed. Conversation state lives in the dialogue
manager, per session and bounded (``max_sessions``, ``max_turns``, ``max_chars``). The models run in
one worker thread, one request at a time, so the event loop keeps accepting requests meanwhile.

Run it: ``python -m mmcourse.assistant.app`` (127.0.0.1:8001) or ``make assistant``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from mmcourse.assistant.dialogue import Assistant, Reply
from mmcourse.deploy.serve import (
    PNG_MAGIC,
    BadInput,
    BodyLimit,
    add_error_handlers,
    read_files,
    read_wav,
)

STATIC = Path(__file__).resolve().parent / "static"
SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
JPEG_MAGIC = b"\xff\xd8\xff"
NOT_RECOGNISED = ("I don't recognise this: it does not look like any item in our catalogue. "
                  "Could you send a clearer picture of the item on its own?")


@dataclass
class AppLimits:
    max_body_bytes: int = 2_000_000
    max_image_side: int = 2048  # pixels, read from the header before decoding
    max_audio_seconds: float = 15.0


@dataclass
class Components:
    """What the app runs: the dialogue manager and the adapters (``None``: that modality is off)."""

    assistant: Assistant
    items: object | None = None  # mmcourse.assistant.items.ItemRecognizer
    listener: object | None = None  # mmcourse.assistant.voice.Listener
    speak: object | None = None  # text -> WAV bytes (mmcourse.assistant.voice.speak)


def default_components(max_sessions: int = 1000) -> Components:
    """The course's components: MiniLM knowledge base and few-shot intents, the anger model (MiniLM
    fine-tuned on non-airline tweets; fast mode: the TF-IDF one, which trains in seconds), the
    Fashion-MNIST item recogniser, pocketsphinx, and chapter 11's digit recogniser trained for the
    assistant (each model trained once, then read from the cache)."""
    from mmcourse.assistant.anger import AngerModel, MiniLMAnger
    from mmcourse.assistant.intents import classifier, fit_on_labels
    from mmcourse.assistant.items import train_items, training_size
    from mmcourse.assistant.knowledge import KnowledgeBase
    from mmcourse.assistant.voice import (
        Listener,
        digit_training_size,
        speak,
        train_digit_recognizer,
    )
    from mmcourse.config import is_fast

    anger = AngerModel() if is_fast() else MiniLMAnger()
    bot = Assistant(KnowledgeBase(), classifier(fit_on_labels()), is_angry=anger,
                    anger_threshold=anger.threshold, max_sessions=max_sessions)
    bot.classify("hello")  # loads MiniLM now, not in the first customer's turn (seconds)
    digits = train_digit_recognizer(**digit_training_size())
    return Components(bot, train_items(**training_size()), Listener(digits), speak)


def reply_json(bot: Assistant, text: str, r: Reply) -> dict:
    """The JSON of one dialogue turn (the article's cosine to the message recomputed from the memo)."""
    score = None
    if r.article_id is not None:
        idx = next(i for i, a in enumerate(bot.kb.articles) if a.id == r.article_id)
        score = round(float(bot.kb.scores([text])[0, idx]), 4)
    return {"reply": r.text, "action": r.action, "intent": r.intent, "confidence": round(r.confidence, 4),
            "slots": {"booking_ref": r.slots.booking_ref, "bag_tag": r.slots.bag_tag},
            "escalate": r.escalated, "reason": r.reason, "article_id": r.article_id,
            "article_title": bot.kb.get(r.article_id).title if r.article_id else None,
            "article_score": score, "unsure": r.action == "unsure" or r.reason == "unsure",
            "anger": None if r.anger is None else round(r.anger, 4)}


def hint(limits: AppLimits) -> str:
    """What a refused (too large) upload should be instead."""
    return f"send a PNG/JPEG picture or a WAV of at most {limits.max_audio_seconds:g} s"


def check_session(value) -> str:
    if not isinstance(value, str) or not SESSION.fullmatch(value):
        raise BadInput(422, f"field 'session' must be 1-64 letters, digits, '-' or '_' (e.g. a random id the page "
                            f"makes), got {str(value)[:80]!r}")
    return value


def decode_picture(data: bytes, max_side: int):
    """PNG or JPEG bytes -> a decoded PIL image (415: another type; 422: too large; 400: corrupt)."""
    from PIL import Image, UnidentifiedImageError

    if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
        raise BadInput(415, "field 'image' must be a PNG or JPEG picture (its bytes start with neither signature)")
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size  # from the header, before decoding the pixels
        if max(w, h) > max_side or min(w, h) < 8:
            raise BadInput(422, f"field 'image' is {w}x{h} pixels; send a picture between 8 and {max_side} "
                                "pixels on each side (resize it first)")
        img.load()
    except BadInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise BadInput(400, f"field 'image' is a corrupt picture ({type(err).__name__}: {err})") from err
    return img


def create_app(components: Components | None = None, limits: AppLimits | None = None):
    """The assistant's FastAPI app (``components``: default :func:`default_components`, built at start-up)."""
    limits = limits or AppLimits()
    pool = ThreadPoolExecutor(1, thread_name_prefix="assistant")
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if "c" not in state:
            state["c"] = components or await asyncio.get_running_loop().run_in_executor(pool, default_components)
        yield
        pool.shutdown(wait=True)

    app = FastAPI(title="mmcourse customer-service assistant", lifespan=lifespan)
    add_error_handlers(app)
    if components is not None:
        state["c"] = components

    async def run(fn, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except ValueError as err:  # the dialogue or a recogniser refused the input: the client's fault
            raise BadInput(422, str(err)) from err

    def chat_turn(session: str, text: str) -> dict:
        bot = state["c"].assistant
        return reply_json(bot, text, bot.turn(session, text))

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                       "style-src 'self' 'unsafe-inline'; media-src 'self' data: blob:; img-src 'self' data: blob:"})

    @app.get("/health")
    async def health() -> dict:
        c: Components = state["c"]
        parts = {"dialogue": "on", "image": "on" if c.items else "off",
                 "speech": "on" if c.listener else "off",
                 "digits": "on" if c.listener is not None and getattr(c.listener, "digits", None) else "off"}
        return {"status": "ok", "components": parts, "sessions": len(c.assistant.sessions),
                "max_sessions": c.assistant.max_sessions}

    @app.post("/chat")
    async def chat(request: Request):
        t0 = time.perf_counter()
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise BadInput(415, "send JSON {\"session\": id, \"text\": message} with Content-Type: application/json")
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            raise BadInput(400, f"the body is not valid JSON ({err})") from err
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise BadInput(422, "field 'text' (a string) is missing: send {\"session\": id, \"text\": message}")
        session = check_session(body.get("session"))
        if not body["text"].strip():
            raise BadInput(422, "field 'text' is empty: type a message")
        out = await run(chat_turn, session, body["text"])
        return {"session": session, **out, "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}

    def need(attr: str, what: str) -> Components:
        if getattr(state["c"], attr) is None:
            raise BadInput(503, f"the {what} component is off in this app")
        return state["c"]

    @app.post("/image")
    async def image(request: Request):
        t0, c = time.perf_counter(), need("items", "image")
        form = await read_files(request, {"image": "PNG or JPEG"}, limits.max_body_bytes, ("session",), hint(limits))
        session = check_session(form["session"]) if "session" in form else None
        img = decode_picture(form["image"], limits.max_image_side)

        def recognise() -> dict:
            from mmcourse.assistant.items import prepare

            item = c.items.recognize(prepare(img))
            reply = f"This looks like a {item.label.lower()} from our catalogue." if item.recognised else NOT_RECOGNISED
            if session is not None:  # the picture is a turn of the conversation (its text only)
                s = c.assistant.session(session)
                s.turns.extend([("customer", "[picture]"), ("assistant", reply)])
            return {"recognised": item.recognised, "item": item.label, "best_guess": item.best_guess,
                    "confidence": round(item.confidence, 4), "distance": round(item.distance, 3),
                    "max_distance": round(c.items.max_distance, 3), "reply": reply}

        out = await run(recognise)
        return {**out, "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}

    @app.post("/audio")
    async def audio(request: Request):
        t0, c = time.perf_counter(), need("listener", "speech")
        form = await read_files(request, {"audio": "WAV"}, limits.max_body_bytes, ("session", "kind"), hint(limits))
        anonymous = "session" not in form  # a one-off turn: its session is forgotten after the reply
        session = check_session(form["session"]) if not anonymous else f"once-{uuid.uuid4().hex}"
        kind = form.get("kind", "words")
        if kind not in ("words", "digits"):
            raise BadInput(422, f"field 'kind' must be 'words' (a question) or 'digits' (a spoken number), got {kind!r}")
        wave, sr = read_wav(form["audio"], limits.max_audio_seconds,
                            hint="record one question or number, a few seconds long")

        def listen_and_reply() -> dict:
            heard = c.listener.transcribe(wave, sr, kind)
            if not heard.text.strip():
                out = {"reply": "Sorry, I didn't catch that. Could you say it again, or type it?", "action": "unheard"}
            else:
                out = chat_turn(session, heard.text)
                if anonymous:
                    c.assistant.end(session)
            spoken = c.speak(out["reply"]) if c.speak else None
            return {"transcript": heard.text, "kind": heard.kind, "engine": heard.engine, **out,
                    "reply_audio": None if spoken is None else
                    "data:audio/wav;base64," + base64.b64encode(spoken).decode("ascii")}

        out = await run(listen_and_reply)
        return {"session": session, **out, "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}

    return BodyLimit(app, limits.max_body_bytes, hint(limits))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="The chapter 13 assistant as a web app (loopback by default).")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1: only this machine can connect")
    p.add_argument("--port", type=int, default=8001)
    a = p.parse_args(argv)
    import uvicorn

    print(f"the assistant: http://{a.host}:{a.port}/ (loading the models takes about 30 s; the first run also trains the item and mood models, about 11 min on one thread)")
    uvicorn.run(create_app(), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
