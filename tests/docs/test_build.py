"""The docs site builds with ``mkdocs build --strict``: no broken link or anchor, no warning from
the generated reference pages (CLI, config keys, API)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from docs_blocks import ROOT

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``mkdocs build --strict`` into a temporary folder: (the finished process, the site folder)."""
    site = tmp_path_factory.mktemp("docs-site") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    return done, site


@pytest.mark.timeout(120)
def test_mkdocs_build_strict(built):
    done, site = built
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    # the generated reference is there and complete
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("terraseg-predict", "terraseg-train", "terraseg-data-inspect", "terraseg-models-pretrained",
                    "terraseg-assess-design", "terraseg-assess-areas", "terraseg-change"):
        assert f'id="{command}"' in cli, command
    assert "--tile-size" in cli and "--min-area" in cli
    config = (site / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    assert 'id="data-crop_size"' in config and 'id="trainer-max_steps"' in config
    dataset = (site / "reference" / "dataset" / "index.html").read_text(encoding="utf-8")
    assert 'id="color_tolerance"' in dataset
    api = (site / "reference" / "api" / "predict" / "index.html").read_text(encoding="utf-8")
    assert 'id="terraseg.predict.api.predict_file"' in api
    for area, name in (("assess", "terraseg.assess.design.design_sample"),
                       ("assess", "terraseg.assess.estimate.estimate_areas"),
                       ("change", "terraseg.change.compare.compare_maps")):
        page = (site / "reference" / "api" / area / "index.html").read_text(encoding="utf-8")
        assert f'id="{name}"' in page, name
    assert (site / "index.html").is_file() and (site / "search" / "search_index.json").is_file()


def test_every_docs_page_is_in_the_nav():
    """A page written but left out of mkdocs.yml's nav is a page nobody finds."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)

    def pages(items):
        for item in items:
            if isinstance(item, str):
                yield item
            elif isinstance(item, dict):
                for value in item.values():
                    yield from pages(value if isinstance(value, list) else [value])

    in_nav = set(pages(config["nav"]))
    docs = ROOT / "docs"
    written = {str(p.relative_to(docs)) for p in docs.rglob("*.md") if "hooks" not in p.parts}
    assert written - in_nav == set(), f"pages missing from the nav: {sorted(written - in_nav)}"



def link_problems(markdown: str, site) -> list[str]:
    """Broken relative links and pictures of a Markdown text at the project root (code spans left
    out): a missing file, or an anchor of a docs page that its built page does not hold."""
    text = re.sub(r"`[^`]*`", "", markdown)
    problems = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        if not (ROOT / path).exists():
            problems.append(f"{target}: no file {path}")
        elif anchor:
            page = path.removeprefix("docs/").removesuffix(".md")
            html = site / ("" if page == "index" else page) / "index.html"
            if not html.is_file() or f'id="{anchor}"' not in html.read_text(encoding="utf-8"):
                problems.append(f"{target}: no anchor #{anchor} in {path}")
    return problems


def test_readme_links_resolve(built):
    """README.md is not part of the site, so mkdocs does not check it: its links into docs/ (files and
    anchors, the anchors against the built pages) are checked here."""
    done, site = built
    assert done.returncode == 0, "the site did not build (see test_mkdocs_build_strict)"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(_LINK.findall(readme)) > 20
    assert link_problems(readme, site) == []
    assert link_problems("[a](docs/nope.md) [b](docs/getting-started.md#no-such-part) `[c](nope.md)`", site) == [
        "docs/nope.md: no file docs/nope.md",
        "docs/getting-started.md#no-such-part: no anchor #no-such-part in docs/getting-started.md"]
