"""The key file: named keys with digests and limits, every mistake named by its line; `hf-infer keys`."""

import argparse
import hashlib
import tomllib

import pytest

from service import cli
from service.cli.keys import key_file_path
from service.keys.keyfile import KeyFileError, Limits, append_key, digest_of, read_key_file
from service.keys.keyring import KeyRing
from service.settings import PROJECT_ROOT, Settings
from tests.support.app import make_settings

DIGEST_A = hashlib.sha256(b"secret-a").hexdigest()
DIGEST_B = hashlib.sha256(b"secret-b").hexdigest()
VALID = f"""\
# client keys
[defaults]
rpm = 60
concurrency = 4

[keys.batch]
sha256 = "{DIGEST_A}"
results_per_day = 1000

[keys.ops]
sha256 = "{DIGEST_B}"
admin = true
rpm = 5
"""


def write(tmp_path, text: str):
    path = tmp_path / "keys.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_gives_named_keys_with_defaults_filled_in(tmp_path):
    key_file = read_key_file(write(tmp_path, VALID))
    assert key_file.defaults == Limits(rpm=60, concurrency=4)
    ring = KeyRing(list(key_file.keys), key_file.defaults)
    batch, ops = ring.identify("secret-a"), ring.identify("secret-b")
    assert (batch.name, batch.admin, batch.limits) == ("batch", False, Limits(60, 4, 1000, None))
    assert (ops.name, ops.admin, ops.limits) == ("ops", True, Limits(5, 4, None, None))
    assert ring.identify("secret-c") is None
    assert ring.identify("") is None


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("[keys.a]\nsha256 = 'x'\nrpm = \n", None, "not valid TOML"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\n\n[keys.a]\nsha256 = "{DIGEST_B}"\n', None, "line 4"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\nrequests_per_minute = 5\n', 3, "unknown setting 'requests_per_minute'"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\nrpm = -1\n', 3, "rpm must be a whole number of at least 1"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\nconcurrency = 0\n', 3, "concurrency must be"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\nimages_per_day = 2.5\n', 3, "images_per_day must be"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\nrpm = true\n', 3, "rpm must be"),
        ("\n[keys.a]\nsha256 = 'abc'\n", 3, "sha256 must be 64 lowercase hex digits"),
        ("[keys.a]\nadmin = true\n", 1, "sha256 must be"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\nadmin = "yes"\n', 3, "admin must be true or false"),
        (f'[keys.a]\nsha256 = "{DIGEST_A}"\n[keys.b]\nsha256 = "{DIGEST_A}"\n', 4, "same secret as key a"),
        (f'[keys."bad name"]\nsha256 = "{DIGEST_A}"\n', 1, "key name 'bad name'"),
        ("[defaults]\nrpm = 5\nadmin = true\n", 3, "unknown setting 'admin'"),
        ("[limits]\nrpm = 5\n", 1, "unknown section [limits]"),
    ],
)
def test_every_mistake_is_refused_naming_its_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(KeyFileError) as refused:
        read_key_file(path)
    message = str(refused.value)
    assert words in message and str(path) in message
    if line is not None:
        assert f"line {line}:" in message


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read it"):
        read_key_file(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\n")
    with pytest.raises(KeyFileError, match="cannot read it"):
        read_key_file(tmp_path / "latin1.toml")


def test_a_toml_key_file_and_plain_keys_make_one_keyring(tmp_path):
    path = write(tmp_path, VALID)
    ring = KeyRing.from_settings(make_settings(api_keys_file=path, api_keys=frozenset({"plain-secret"})))
    plain = ring.identify("plain-secret")
    assert plain.name == f"key-{digest_of('plain-secret')[:8]}"
    assert plain.limits == Limits(rpm=60, concurrency=4)  # the file's defaults
    assert ring.identify("secret-a").name == "batch"
    assert ring.required


@pytest.mark.parametrize(
    "name, text",
    [("keys.toml", "[defaults]\nrpm = 60\n"), ("keys.toml", "# nobody yet\n"), ("keys.txt", "# nobody yet\n\n")],
)
def test_a_key_file_that_holds_no_key_is_refused_rather_than_opening_the_service(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KeyFileError, match="holds no key, so every caller would be let in"):
        KeyRing.from_settings(Settings.from_env({"API_KEYS_FILE": str(path)}))


def test_appending_a_key_writes_its_digest_never_its_secret(tmp_path):
    path = tmp_path / "config" / "keys.toml"
    secret = append_key(path, "nightly", Limits(rpm=30, images_per_day=10), admin=False)
    text = path.read_text(encoding="utf-8")
    assert secret.startswith("hfg_") and len(secret) > 40
    assert secret not in text and digest_of(secret) in text
    assert tomllib.loads(text)["keys"]["nightly"] == {"sha256": digest_of(secret), "rpm": 30, "images_per_day": 10}
    second = append_key(path, "ops", Limits(), admin=True)
    ring = KeyRing(list(read_key_file(path).keys))
    assert ring.identify(secret).name == "nightly" and ring.identify(second).admin


def test_appending_refuses_a_duplicate_name_or_a_broken_file_and_leaves_it_untouched(tmp_path):
    path = write(tmp_path, VALID)
    with pytest.raises(KeyFileError, match="already exists"):
        append_key(path, "batch", Limits(), admin=False)
    with pytest.raises(KeyFileError, match="key name"):
        append_key(path, "no spaces", Limits(), admin=False)
    assert path.read_text(encoding="utf-8") == VALID
    broken = write(tmp_path, VALID + "rpm = -5\n")
    with pytest.raises(KeyFileError, match="line"):
        append_key(broken, "new", Limits(), admin=False)
    assert broken.read_text(encoding="utf-8") == VALID + "rpm = -5\n"


def test_keys_add_prints_the_secret_once_and_list_shows_limits_without_it(tmp_path, capsys):
    path = tmp_path / "keys.toml"
    exit_code = cli.main(["keys", "add", "batch", "--rpm", "30", "--concurrency", "4", "--admin", "--file", str(path)])
    out, err = capsys.readouterr()
    secret = out.strip()
    assert exit_code == 0 and secret.startswith("hfg_") and "shown once" in err and secret not in err
    assert cli.main(["keys", "list", "--file", str(path)]) == 0
    listing = capsys.readouterr().out
    assert secret not in listing and digest_of(secret)[:12] in listing
    header, defaults, row = listing.splitlines()
    assert header.split() == [
        "name",
        "admin",
        "rpm",
        "concurrency",
        "results_per_day",
        "images_per_day",
        "tokens_per_day",
        "sha256",
    ]
    assert row.split() == ["batch", "yes", "30", "4", "-", "-", "-", digest_of(secret)[:12]]


def test_keys_commands_report_a_bad_file_and_exit_1(tmp_path, capsys):
    path = write(tmp_path, "[keys.a]\nrpm = 5\n")
    assert cli.main(["keys", "list", "--file", str(path)]) == 1
    assert "line 1" in capsys.readouterr().err
    assert cli.main(["keys", "add", "x", "--file", str(tmp_path / "keys.txt")]) == 1
    assert ".toml" in capsys.readouterr().err


def test_keys_add_refuses_a_limit_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["keys", "add", "x", "--rpm", "0", "--file", str(tmp_path / "k.toml")])
    assert "must be at least 1" in capsys.readouterr().err


def test_keys_commands_find_the_key_file_the_service_reads_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = argparse.Namespace(file=None)
    monkeypatch.setenv("API_KEYS_FILE", "config/team.toml")
    assert key_file_path(options) == PROJECT_ROOT / "config" / "team.toml"
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "elsewhere.toml"))
    assert key_file_path(options) == tmp_path / "elsewhere.toml"
