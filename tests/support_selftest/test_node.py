"""tests/support/node.py: a script's last JSON line comes back; a failing or silent script fails
the test with what it wrote."""

import pytest

from tests.support.node import NodeScriptFailed, run_node


def script(tmp_path, text: str):
    path = tmp_path / "script.mjs"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_last_line_of_output_is_the_answer(tmp_path):
    path = script(
        tmp_path,
        'console.log("warming up");\nconsole.log(JSON.stringify({url: process.argv[2], more: process.argv[3]}));\n',
    )
    assert run_node(path, "http://127.0.0.1:9", "x") == {"url": "http://127.0.0.1:9", "more": "x"}


@pytest.mark.parametrize(
    "text",
    ['console.log("{}"); process.exit(3);', 'console.log("not json");', ""],
    ids=["exit code", "no json", "silent"],
)
def test_a_failing_script_fails_with_what_it_wrote(tmp_path, text):
    with pytest.raises(NodeScriptFailed, match="script.mjs exited"):
        run_node(script(tmp_path, text + '\nconsole.error("said on stderr");\n'), "http://127.0.0.1:9")
