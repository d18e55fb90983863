"""The docs site builds with ``mkdocs build --strict``: no broken link or anchor, no warning from
the generated reference pages (CLI, config keys, API)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from docs_blocks import ROOT


@pytest.mark.timeout(120)
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    # the generated reference is there and complete
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("terraseg-predict", "terraseg-train", "terraseg-data-inspect", "terraseg-models-pretrained"):
        assert f'id="{command}"' in cli, command
    assert "--tile-size" in cli and "--min-area" in cli
    config = (site / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    assert 'id="data-crop_size"' in config and 'id="trainer-max_steps"' in config
    dataset = (site / "reference" / "dataset" / "index.html").read_text(encoding="utf-8")
    assert 'id="color_tolerance"' in dataset
    api = (site / "reference" / "api" / "predict" / "index.html").read_text(encoding="utf-8")
    assert 'id="terraseg.predict.api.predict_file"' in api
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
