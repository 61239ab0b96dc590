"""A raw Streamlit client over a websocket, as an attacker's script would be: no browser, any
``Host``, ``Origin``, cookies or proxy headers, and widget values sent straight in the protocol's
own messages (``BackMsg`` protobufs from ``streamlit.proto``).

``StreamlitClient(base).run(page)`` opens a session and runs a page; ``Page`` holds what the
server sent back: every text shown (markdown, text, headings, alerts, code, HTML bodies, button
labels) and every widget (label -> id). ``submit(page, {label: value}, button)`` sets widget
values and presses a button, as the browser does when a form is submitted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

__all__ = ["Page", "Refused", "StreamlitClient"]


class Refused(Exception):
    """The server refused the websocket handshake (``status`` is its HTTP status)."""

    def __init__(self, status: int | None, body: str = ""):
        super().__init__(f"websocket refused: HTTP {status} {body[:200]}")
        self.status = status
        self.body = body


@dataclass
class Page:
    texts: list[str] = field(default_factory=list)
    widgets: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (kind, id)
    exceptions: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def buttons(self) -> list[str]:
        return [label for label, (kind, _) in self.widgets.items() if kind == "button"]


def _collect(msg: ForwardMsg, page: Page) -> None:
    if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return
    el = msg.delta.new_element
    kind = el.WhichOneof("type")
    inner = getattr(el, kind)
    if kind in ("markdown", "text", "heading", "html", "alert"):
        page.texts.append(inner.body)
    elif kind == "code":
        page.texts.append(inner.code_text)
    elif kind == "exception":
        page.exceptions.append(f"{inner.type}: {inner.message}")
    elif kind == "dataframe":
        page.texts.append("<dataframe>")
    if hasattr(inner, "id") and getattr(inner, "label", None) is not None and inner.id:
        page.widgets[inner.label] = (kind, inner.id)
        page.texts.append(inner.label)


class StreamlitClient:
    """One websocket session with the server at ``base`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base: str, *, host: str | None = None, origin: str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 45.0):
        parts = urlsplit(base)
        self.target = (parts.hostname, parts.port)
        # the Host header is the URL's: a name given here goes in the URL, the socket still
        # connects to ``base`` (as after a DNS answer pointing the name at it)
        self.url = f"ws://{host or parts.netloc}/_stcore/stream"
        self.host = host
        self.origin = origin
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.ws = None

    async def __aenter__(self) -> StreamlitClient:
        try:
            self.ws = await websockets.connect(
                self.url, subprotocols=["streamlit"], additional_headers=self.headers, origin=self.origin,
                open_timeout=self.timeout, max_size=None, host=self.target[0], port=self.target[1],
            )
        except websockets.InvalidStatus as exc:
            raise Refused(exc.response.status_code, exc.response.body.decode("utf-8", "replace") if exc.response.body else "") from None
        return self

    async def __aexit__(self, *exc) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def _rerun(self, page_name: str, query: str, states: list | None = None) -> Page:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = query
        cs.page_name = page_name
        for ws in states or []:
            cs.widget_states.widgets.append(ws)
        await self.ws.send(msg.SerializeToString())
        page = Page()
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), self.timeout)
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            _collect(fwd, page)
            if fwd.WhichOneof("type") == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    page = Page()  # the script reran itself (st.rerun): read the new run
                    continue
                page.finished = True
                return page

    async def run(self, page_name: str = "", query: str = "") -> Page:
        """Run ``page_name`` (a url path such as ``anomalies``; "" is the default page)."""
        self._page_name, self._query = page_name, query
        return await self._rerun(page_name, query)

    async def submit(self, page: Page, values: dict[str, str], button: str) -> Page:
        """Set the text widgets named in ``values`` (by label) and press ``button``."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        states = []
        for label, value in values.items():
            kind, wid = page.widgets[label]
            ws = WidgetState(id=wid)
            ws.string_value = value
            states.append(ws)
        _, bid = page.widgets[button]
        ws = WidgetState(id=bid)
        ws.trigger_value = True
        states.append(ws)
        return await self._rerun(self._page_name, self._query, states)

    async def press(self, widget_id: str, page_name: str, query: str = "", extra: list | None = None) -> Page:
        """Send a button press for ``widget_id`` (known or guessed), as a replayed message would."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        ws = WidgetState(id=widget_id)
        ws.trigger_value = True
        return await self._rerun(page_name, query, [*(extra or []), ws])


def run(coro):
    """Run ``coro`` to completion in a thread of its own (playwright's sync API keeps an event
    loop running in the test's thread)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
