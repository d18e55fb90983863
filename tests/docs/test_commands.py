"""Every ``terraseg ...`` command line in any docs block (runnable or not) and in README.md parses
against the real command tree: the sub-commands exist and every ``--option`` is one of the
command's options. Nothing is executed, so a renamed option fails here even in blocks too long to
run."""

from __future__ import annotations

import re
import shlex

import pytest

from docs_blocks import all_blocks

SHELL_LANGS = {"bash", "sh", "shell", "console"}
PROMPT_LANGS = {"", "text", "console"}  # only lines that start with "$ "
_PLACEHOLDER = re.compile(r"<([\w.-]+)>")  # runs/<run>/bundle: a name to fill in, not a redirection
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")


def _command_tree():
    import typer.main

    from terraseg.cli import app

    return typer.main.get_command(app)


def _train_sections() -> set[str]:
    import json

    from docs_blocks import ROOT

    schema = json.loads((ROOT / "src" / "terraseg" / "schemas" / "training.schema.json").read_text())
    return set(schema["properties"])


def command_lines(block) -> list[str]:
    """The logical shell lines of a block (continuations joined, heredoc bodies left out)."""
    raw = block.code.split("\n")
    if block.lang in PROMPT_LANGS or block.lang == "console":
        raw = [line[2:] for line in raw if line.startswith("$ ")]
    elif block.lang not in SHELL_LANGS:
        return []
    out, current, heredoc = [], "", None
    for line in raw:
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        match = _HEREDOC.search(current)
        if match:
            heredoc = match.group(1)
        out.append(current)
        current = ""
    if current:
        out.append(current)
    return out


def terraseg_invocations(line: str) -> list[list[str]]:
    """The argument lists after each ``terraseg`` of one shell line."""
    line = _PLACEHOLDER.sub(lambda m: m.group(1).upper(), line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in a prose-like line
        return []
    commands, current = [], []
    for token in tokens:
        if token and set(token) <= set("();<>|&"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    found = []
    for words in commands:
        for i, word in enumerate(words):
            if word == "terraseg" or word.endswith("/terraseg"):
                found.append(words[i + 1:])
                break
    return found


def check(args: list[str], root, train_sections: set[str]) -> list[str]:
    """Problems of one invocation: unknown sub-commands or options."""
    command, path = root, ["terraseg"]
    i = 0
    while getattr(command, "commands", None) and i < len(args):
        word = args[i]
        if word.startswith("-"):
            if word not in ("--help", "--version"):
                return [f"{' '.join(path)}: unknown option {word}"]
            return []
        if word not in command.commands:
            return [f"{' '.join(path)}: no sub-command {word!r}"]
        command = command.commands[word]
        path.append(word)
        i += 1
    options = {}
    for param in command.params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                options[name] = param
    problems = []
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            break
        if not word.startswith("-") or re.fullmatch(r"-\d[\d.e+-]*", word) or word == "-":
            continue
        name, has_value = word.split("=", 1)[0], "=" in word
        if name == "--help":
            continue
        param = options.get(name)
        if param is None:
            if path == ["terraseg", "train"] and name.startswith("--") and name[2:].split(".")[0] in train_sections \
                    and "." in name:
                if not has_value:
                    i += 1  # --section.key value
                continue
            problems.append(f"{' '.join(path)}: unknown option {name}")
            continue
        if not has_value and not getattr(param, "is_flag", False) and not getattr(param, "count", False):
            i += 1  # the option's value
    return problems


INVOCATIONS = [(block, args) for block in all_blocks() for line in command_lines(block)
               for args in terraseg_invocations(line)]


def test_docs_hold_many_terraseg_commands():
    assert len(INVOCATIONS) > 100, len(INVOCATIONS)


@pytest.mark.parametrize("page", sorted({b.page for b, _ in INVOCATIONS}))
def test_commands_parse(page):
    root, sections = _command_tree(), _train_sections()
    problems = []
    for block, args in INVOCATIONS:
        if block.page == page:
            problems += [f"{block.id}: {problem}   [terraseg {' '.join(args)}]"
                         for problem in check(args, root, sections)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_renamed_option():
    root, sections = _command_tree(), _train_sections()
    (args,) = terraseg_invocations("terraseg predict model scene.tif --out maps --tile-sise 512")
    assert check(args, root, sections) == ["terraseg predict: unknown option --tile-sise"]
    (args,) = terraseg_invocations("terraseg data splitt x.yaml")
    assert check(args, root, sections) == ["terraseg data: no sub-command 'splitt'"]
    (args,) = terraseg_invocations("srun terraseg train cfg.yaml --devices 4 --trainer.max_epochs=5 data.crop_size=64")
    assert check(args, root, sections) == []
    (args,) = terraseg_invocations("terraseg train cfg.yaml --trainerr.max_epochs=5")
    assert check(args, root, sections) == ["terraseg train: unknown option --trainerr.max_epochs"]
