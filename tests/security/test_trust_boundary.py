"""The dashboard's trust boundary, probed as an attacker would, against the real
``pipepulse dashboard serve`` with raw HTTP, raw websockets and Chromium.

Findings of issue #19 replayed here (each test names its finding):
- DNS rebinding: a page on ``attacker.example`` (resolving to 127.0.0.1) loaded the no-login
  dashboard with its Acknowledge button, over HTTP and the websocket.
- Login decided by the bind address alone: a request through a proxy (``X-Forwarded-For``, or a
  browser's ``Origin`` naming the proxy) got the no-login admin.
- No frame protection (the admin page loaded in a foreign iframe); ``/_stcore/metrics`` open;
  ``/media/`` CSVs served without login and after the session closed.
What held up and must keep holding: a cross-origin websocket gets 403.
"""

from __future__ import annotations

import pytest
from conftest import http, settle
from stclient import Refused, StreamlitClient, run

pytestmark = pytest.mark.browser


def _ws_page(server, page_name: str, **kw):
    async def go():
        async with StreamlitClient(server.base, **kw) as c:
            return await c.run(page_name)
    return run(go())


# ---- DNS rebinding -----------------------------------------------------------------------------


def test_rebinding_in_chromium_gets_a_refusal_not_the_admin_page(local, page):
    # the same browser on the real name gets the page with its admin button ...
    page.goto(local.base + "/anomalies")
    settle(page, text="Act on one")
    page.get_by_role("button", name="Acknowledge").wait_for()
    # ... and on a name that an attacker's DNS points at 127.0.0.1 it gets a refusal
    response = page.goto(f"http://attacker.example:{local.port}/anomalies")
    assert response.status == 403
    assert "attacker.example is not a name this dashboard answers to" in page.content()
    assert page.get_by_role("button", name="Acknowledge").count() == 0


@pytest.mark.parametrize("path", ["/", "/anomalies", "/_stcore/host-config", "/static/js/does-not-matter.js", "/export/x", "/media/x"])
def test_rebinding_host_is_refused_on_every_http_path(local, path):
    status, _, body = http(local.base + path, headers={"Host": f"attacker.example:{local.port}"})
    assert status == 403, (path, body[:200])
    assert b"attacker.example is not a name this dashboard answers to" in body


def test_rebinding_websocket_is_refused_before_the_app_runs(local):
    # what the rebinding page's websocket would send: its own name as Host and Origin
    with pytest.raises(Refused) as refused:
        _ws_page(local, "anomalies", host=f"attacker.example:{local.port}", origin=f"http://attacker.example:{local.port}")
    assert refused.value.status == 403
    # without an Origin (a script, not a browser) the Host alone is refused too
    with pytest.raises(Refused) as refused:
        _ws_page(local, "anomalies", host=f"attacker.example:{local.port}")
    assert refused.value.status == 403
    # the local name still works, and the local user is the admin
    shown = _ws_page(local, "anomalies", origin=local.base)
    assert "Acknowledge" in shown.buttons()


def test_health_answers_any_host(local):
    # load balancers probe the target's IP; the health answer says nothing about the data
    status, _, body = http(local.base + "/_stcore/health", headers={"Host": "10.0.3.7:8501"})
    assert (status, body) == (200, b"ok")


# ---- behind a proxy without a login ------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"])
def test_a_forwarded_request_to_a_dashboard_without_login_is_refused(local, header):
    value = "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
    status, _, body = http(local.base + "/anomalies", headers={header: value})
    assert status == 403
    assert b"has no login" in body and b"trusted_proxies" in body
    with pytest.raises(Refused) as refused:
        _ws_page(local, "anomalies", origin=local.base, headers={header: value})
    assert refused.value.status == 403


def test_a_proxy_that_forwards_no_headers_is_caught_by_the_origin(local):
    # nginx's default proxy_pass sends Host 127.0.0.1:PORT and no X-Forwarded-For; the
    # visitor's browser still names the public site in the websocket's Origin
    with pytest.raises(Refused) as refused:
        _ws_page(local, "anomalies", origin="https://dash.example.com")
    assert refused.value.status == 403


def test_cross_origin_websocket_gets_403(local):
    # held up before: a foreign page's websocket to the real name
    with pytest.raises(Refused) as refused:
        _ws_page(local, "anomalies", origin="http://evil.example")
    assert refused.value.status == 403


# ---- frames, metrics ---------------------------------------------------------------------------


def test_no_page_loads_in_a_foreign_frame(local, page):
    # a page of another origin (another local server: Chromium keeps public pages from framing
    # local ones anyway) that frames the admin page
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = (f'<iframe id="f" src="{local.base}/anomalies" width="1200" height="900" '
            'onload="this.dataset.loaded=1"></iframe>').encode()

    class Framer(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    framer = ThreadingHTTPServer(("127.0.0.1", 0), Framer)
    threading.Thread(target=framer.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://localhost:{framer.server_address[1]}/frame.html")
        page.wait_for_selector("#f[data-loaded]")
        (child,) = page.main_frame.child_frames
        # Chromium replaces a frame it may not show with its error page
        assert child.url.startswith("chrome-error://"), child.url
        assert child.locator('[data-testid="stApp"]').count() == 0
    finally:
        framer.shutdown()
    status, headers, _ = http(local.base + "/anomalies")
    assert status == 200
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_metrics_are_off(local):
    status, _, _ = http(local.base + "/_stcore/metrics")
    assert status == 404
