"""Key files for tests: named keys with known secrets and limits."""

from pathlib import Path

from service.keys.keyfile import digest_of


def write_key_file(path: Path, keys: dict[str, dict]) -> Path:
    """Write [keys.<name>] tables: each value holds `secret` and any limits or `admin`."""
    lines = []
    for name, entry in keys.items():
        lines += [f"[keys.{name}]", f'sha256 = "{digest_of(entry["secret"])}"']
        lines += [f"{field} = {str(value).lower()}" for field, value in entry.items() if field != "secret"]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}
