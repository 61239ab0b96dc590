"""Text that leaves pipepulse for a person: secrets masked, control characters removed.

- ``mask_url(text)``: a database (or any) URL with its password replaced by ``***``. It works on
  text that is not a valid URL too (no scheme, a non-numeric port, an unencoded ``@`` in the
  password), because those are exactly the URLs that end up in error messages. The user part
  ends at the *last* ``@`` before the host, as libpq and ``urllib`` read it, so a password
  holding an ``@`` is masked whole.
- ``strip_controls(text)``: C0 and C1 control characters removed (newlines and tabs kept).
  Text from imports, AWS answers and stored rows goes through it before a terminal or a CSV
  file sees it.
- ``terminal_text(text)``: ``strip_controls`` after removing whole ANSI escape sequences
  (``ESC [ ... m`` colours, cursor moves, OSC titles and hyperlinks), so a cost export cannot
  recolour, move or retitle the terminal that prints it.
"""

from __future__ import annotations

import re

__all__ = ["mask_url", "strip_controls", "terminal_text"]

MASK = "***"
# C0 controls except \t and \n, DEL, C1 controls; \r goes too (it moves the cursor home)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-byte escapes; 8-bit CSI/OSC as well
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor, erase
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: titles, hyperlinks
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]"  # two-byte escapes (ESC c resets the terminal)
)
# scheme://userinfo@host...: userinfo runs to the last @ before the path
_WITH_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<netloc>[^/?#\s]*)")


def _mask_netloc(netloc: str) -> str:
    user, at, host = netloc.rpartition("@")
    if not at:
        return netloc
    name, colon, _password = user.partition(":")
    return f"{name}:{MASK}@{host}" if colon else netloc


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``; a string without a
    scheme (``user:secret@host/db``) is treated as one URL's user and host part."""
    if "://" in text:
        return _WITH_SCHEME.sub(lambda m: m["scheme"] + _mask_netloc(m["netloc"]), text)
    head, sep, tail = text.partition("/")
    return _mask_netloc(head) + sep + tail if "@" in head else text


def strip_controls(text: str) -> str:
    """``text`` without control characters (tabs and newlines kept; ``\\r\\n`` becomes ``\\n``)."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n"))


def terminal_text(text: str) -> str:
    """``text`` safe to print: escape sequences and other control characters removed."""
    return strip_controls(_ESCAPES.sub("", text))
