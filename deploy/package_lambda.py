"""Build the reference pipeline's Lambda zip: ``deploy/lambda/handlers.py`` plus the stage code
it wraps (``pipeline/``) and the few ``pipepulse`` modules ``pipeline/`` imports.

    python deploy/package_lambda.py [--out-dir deploy/build]

prints the zip's path. The name carries a hash of the contents
(``reference-pipeline-lambda-<sha256[:12]>.zip``) and the zip is byte-for-byte reproducible
(sorted entries, fixed timestamps), so uploading it under that key and passing the key to the
stack deploys new code exactly when the code changed. boto3/botocore come from the Lambda
Python runtime; nothing else is needed by the modules the handlers import.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "deploy" / "lambda" / "handlers.py"
# the floor modules pipeline/ imports (docs/architecture.md); pipeline/ledger.py also imports
# store.ledger, which the handlers never load (a Lambda keeps no ledger)
PIPEPULSE_MODULES = ("__init__.py", "errors.py", "settings.py", "redact.py", "cron.py", "vocab.py", "retries.py")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def files() -> list[tuple[str, Path]]:
    """(name in the zip, file) for everything the zip holds, sorted by name."""
    out = [("handlers.py", HANDLERS)]
    out += [(f"pipeline/{p.name}", p) for p in (ROOT / "pipeline").glob("*.py")]
    out += [(f"pipepulse/{name}", ROOT / "pipepulse" / name) for name in PIPEPULSE_MODULES]
    return sorted(out)


def build(out_dir: Path) -> Path:
    """Write the zip into ``out_dir``; returns its path."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in files():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    data = buf.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"reference-pipeline-lambda-{hashlib.sha256(data).hexdigest()[:12]}.zip"
    target.write_bytes(data)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", type=Path, default=ROOT / "deploy" / "build", help="where to write the zip")
    args = p.parse_args(argv)
    print(build(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
