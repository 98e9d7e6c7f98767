"""The Models page: AppTest of the table, an opened model, its snippets against the registry,
the comparison and a user's folder checked for publishing; the page's logic without a
browser; and one real-browser flow that downloads weights and checks their bytes."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from apptest import cold_offline_app
from streamlit.testing.v1 import AppTest

from gallery import models as gm
from hub_models import hub, runfiles
from hub_models.registry import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "pages" / "models.py"
TIMEOUT = 120
PUBLISHED = [m for f in FAMILIES.values() for m in f.models]
AUXILIARY = [m for f in FAMILIES.values() for m in f.auxiliary]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Each test starts cold and offline, on the bundled snapshots."""
    yield from cold_offline_app(monkeypatch, tmp_path)


def open_page() -> AppTest:
    """The page on its own (app.py adds it to the navigation; see test_page_is_in_the_app)."""
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def open_model(at: AppTest, family: str, name: str) -> AppTest:
    at.selectbox(key="models_family").set_value(family).run()
    at.selectbox(key="models_open").set_value(name).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def codes(at: AppTest) -> dict[str, str]:
    """The page's code blocks by what they hold."""
    found = {}
    for block in at.code:
        text = block.value
        if text.startswith("from hub_models import load"):
            found["load"] = text
        elif ".from_pretrained(" in text:
            found["from_pretrained"] = text
        elif text.startswith("hf download"):
            found["download"] = text
        elif text.startswith("python -m training sample"):
            found["sample"] = text
        elif text.startswith("python -m training publish"):
            found["publish"] = text
        else:
            found["retrain"] = text
    return found


# -- the table ----------------------------------------------------------------------------------


def test_table_lists_every_published_model_with_its_thumbnail_and_revision():
    at = open_page()
    table = at.dataframe[0].value
    assert list(table["model"]) == [m.name for m in PUBLISHED]  # 40 today
    assert {"sample", "family", "dataset", "objective / kind", "key metric"} <= set(table.columns)
    assert {"parameters", "weights", "revision", "source"} <= set(table.columns)
    assert table["sample"].str.startswith("data:image/png;base64,").all()
    assert table["revision"].str.startswith("sha256:").all()  # offline: the bundled snapshots
    assert (table["source"] == "bundled").all()
    assert f"{len(PUBLISHED)} of {len(PUBLISHED)} published models" in [c.value for c in at.caption]
    row = table.set_index("model").loc["toy2d-grid-minimax"]
    assert row["dataset"] == "grid" and row["objective / kind"] == "minimax"
    assert row["key metric"] == "Modes covered: 24"
    weights = FAMILIES["toy2d"].model("toy2d-grid-minimax").snapshot / runfiles.WEIGHTS
    assert row["revision"] == hub.bundled_revision(weights.parent)

    at.toggle(key="models_auxiliary").set_value(True).run()
    names = list(at.dataframe[0].value["model"])
    assert len(names) == len(PUBLISHED) + len(AUXILIARY)
    assert {m.name for m in AUXILIARY} <= set(names)


def test_filters_by_family_and_search():
    at = open_page()
    at.selectbox(key="models_family").set_value("ganomaly").run()
    table = at.dataframe[0].value
    assert list(table["model"]) == [m.name for m in FAMILIES["ganomaly"].models]
    assert at.selectbox(key="models_open").options == list(table["model"])
    at.text_input(key="models_search").input("gravel").run()
    assert list(at.dataframe[0].value["model"]) == ["ganomaly-gravel"]
    at.text_input(key="models_search").input("no such model").run()
    assert at.dataframe[0].value.empty
    assert "No model matches" in at.info[0].value
    assert not at.exception


def test_a_link_from_a_demo_page_filters_and_opens():
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params["family"] = "images"
    at.query_params["model"] = "images-emoji-cgan"
    at.run()
    assert set(at.dataframe[0].value["family"]) == {FAMILIES["images"].title}
    assert at.selectbox(key="models_open").value == "images-emoji-cgan"
    assert at.subheader[0].value.endswith("/images-emoji-cgan")


# -- one model opened ---------------------------------------------------------------------------


def test_an_opened_model_shows_source_sample_metrics_files_and_card():
    at = open_model(open_page(), "toy2d", "toy2d-grid-minimax")
    snapshot = FAMILIES["toy2d"].model("toy2d-grid-minimax").snapshot
    captions = " ".join(c.value for c in at.caption)
    assert "bundled snapshot · gan-gallery/toy2d-grid-minimax @ sha256:" in captions
    assert "HF_HUB_OFFLINE" in captions  # why the fallback
    assert len(at.get("image")) == 1  # the sample picture
    metrics = at.dataframe[1].value
    assert metrics.loc["Modes covered", "value"] == "24"
    files = at.dataframe[2].value.set_index("file")
    assert list(files.index) == hub.publishable_names(snapshot)
    for name in files.index:
        assert files.loc[name, "sha256"] == sha256(snapshot / name)
        assert files.loc[name, "bytes"] == (snapshot / name).stat().st_size
    card = " ".join(m.value for m in at.markdown)
    assert "## Training" in card and "## Limitations" in card and "model-index" not in card
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["model.safetensors", "config.json", "toy2d-grid-minimax.zip (the whole repo)"]


@pytest.mark.parametrize(
    "model",
    [f.featured_model for f in FAMILIES.values()] + AUXILIARY[:1],
    ids=lambda m: m.name,
)
def test_snippets_name_the_repo_and_the_recorded_commands(model):
    from training.cli import build_parser

    spec = next(f for f in FAMILIES.values() if model in (*f.models, *f.auxiliary))
    auxiliary = model in spec.auxiliary
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params["family"] = spec.name
    at.run()
    if auxiliary:
        at.toggle(key="models_auxiliary").set_value(True).run()
    open_model(at, spec.name, model.name)
    shown = codes(at)
    repo = model.repo_id
    bundle = model.bundle if auxiliary else spec.bundle
    assert shown["load"] == (
        f'from hub_models import load\n\nmodel, source = load("{repo}")  # Hub → HF cache → '
        "bundled snapshot\nprint(source.label)"
    )
    assert f"from {bundle.__module__} import {bundle.__name__}" in shown["from_pretrained"]
    assert f'{bundle.__name__}.from_pretrained("{repo}")' in shown["from_pretrained"]
    assert shown["download"] == f"hf download {repo}"
    record = json.loads((model.snapshot / runfiles.TRAINING).read_text())
    train, dry_run, publish = shown["retrain"].splitlines()
    assert train == f"{record['command']} --out runs/{model.name}"
    target = f"--repo-id YOUR-ORG/{model.name}"
    assert dry_run == f"python -m training publish runs/{model.name} {target} --dry-run"
    assert publish == f"python -m training publish runs/{model.name} {target}"
    parser = build_parser()
    for line in (train, dry_run, publish):  # every command parses as the CLI reads it
        args, _ = parser.parse_known_args(shlex.split(line)[3:])
        assert args.command in ("train", "auxiliary", "publish")
    if auxiliary:
        assert "sample" not in shown  # the CLI samples a family's own models only
        return
    sample = shlex.split(shown["sample"])
    assert sample[:7] == ["python", "-m", "training", "sample", spec.name, "--from", repo]
    suffix = Path(sample[sample.index("--out") + 1]).suffix
    assert suffix in spec.make_trainer().sample_formats()


def test_the_snippets_run_as_shown(tmp_path):
    """The two Python snippets of a featured model, in a fresh offline process; and the sample
    command through the CLI."""
    from training import cli

    at = open_model(open_page(), "toy2d", "toy2d-grid-minimax")
    shown = codes(at)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GAN_GALLERY"))}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty"))
    for snippet in (shown["load"], shown["from_pretrained"]):
        result = subprocess.run(
            [sys.executable, "-c", snippet],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith("bundled snapshot · gan-gallery/toy2d-grid-minimax @")
    out = tmp_path / "samples"
    out.mkdir()
    argv = shlex.split(shown["sample"])[3:]
    argv[argv.index("--out") + 1] = str(out / argv[argv.index("--out") + 1])
    assert cli.main(argv) == 0
    assert (out / "toy2d-grid-minimax-samples.png").is_file()


def test_downloads_are_the_bytes_the_hub_layer_resolved():
    """What the download buttons and the zip hold (the browser test checks a real download)."""
    where = gm.resolved("gan-gallery/images-mnist-dcgan")
    snapshot = FAMILIES["images"].model("images-mnist-dcgan").snapshot
    assert where.source == "bundled" and where.path == snapshot
    with zipfile.ZipFile(BytesIO(gm.repo_zip(where))) as archive:
        names = archive.namelist()
        assert names == [f"images-mnist-dcgan/{n}" for n in hub.publishable_names(snapshot)]
        for name in names:
            assert archive.read(name) == (snapshot / name.split("/", 1)[1]).read_bytes()
    assert gm.repo_zip(where) == hub.repo_zip(where)  # the same files give the same archive


# -- comparing two models -----------------------------------------------------------------------


def test_compare_two_models_of_one_family():
    at = open_page()
    at.radio(key="models_view").set_value("Compare two").run()
    at.selectbox(key="models_cmp_family").set_value("images").run()
    at.selectbox(key="models_cmp_a_images").set_value("images-emoji-dcgan").run()
    at.selectbox(key="models_cmp_b_images").set_value("images-emoji-wgan-gp").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table.columns) == ["images-emoji-dcgan", "images-emoji-wgan-gp"]
    names = FAMILIES["images"].metric_names
    for name, column in (("images-emoji-dcgan", 0), ("images-emoji-wgan-gp", 1)):
        metrics = json.loads(
            (FAMILIES["images"].model(name).snapshot / runfiles.EVALUATION).read_text()
        )
        assert table.loc[names["fid"]].iloc[column] == f"{metrics['fid']:.4g}"
    assert [i.proto.imgs[0].caption for i in at.get("image")] == list(table.columns)


# -- a folder the user trained ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from training import cli

    out = tmp_path_factory.mktemp("models-page") / "run"
    assert cli.main(["train", "toy2d", "--preset", "tiny", "--steps=12", "--out", str(out)]) == 0
    return out


def break_folder(trained: Path, tmp_path: Path, how: str) -> Path:
    folder = tmp_path / how
    shutil.copytree(trained, folder)
    if how == "missing-config":
        (folder / runfiles.CONFIG).unlink()
    elif how == "pickle-weights":
        (folder / runfiles.WEIGHTS).rename(folder / "pytorch_model.bin")
    elif how == "config-mismatch":
        config = json.loads((folder / runfiles.CONFIG).read_text())
        (folder / runfiles.CONFIG).write_text(json.dumps({**config, "g_width": 16}))
    elif how == "missing-card":
        (folder / runfiles.CARD).unlink()
    return folder


def open_folder(folder: Path | str) -> AppTest:
    at = open_page()
    at.radio(key="models_view").set_value("A folder I trained").run()
    at.text_input(key="models_folder").input(str(folder)).run()
    assert not at.exception, at.exception
    return at


def test_a_trained_folder_opens_like_a_published_model_and_validates(trained):
    at = open_folder(trained)
    assert not at.error, [e.value for e in at.error]
    assert f"local folder · {trained}" in " ".join(c.value for c in at.caption)
    shown = codes(at)
    assert f'Toy2DGAN.from_pretrained("{trained}")' in shown["from_pretrained"]
    assert "load" not in shown and "download" not in shown  # a folder is not a Hub repo yet
    assert shown["publish"].splitlines() == [
        f"python -m training publish {trained} --repo-id YOUR-ORG/run --dry-run",
        f"python -m training publish {trained} --repo-id YOUR-ORG/run",
    ]
    at.button(key="models_validate").click().run()
    assert not at.error
    assert at.success[0].value.startswith("Ready to publish: 7 files")


@pytest.mark.parametrize(
    "how", ["missing-config", "pickle-weights", "config-mismatch", "missing-card"]
)
def test_validate_for_publishing_shows_what_publish_dry_run_says(how, trained, tmp_path, capsys):
    from training import cli

    folder = break_folder(trained, tmp_path, how)
    assert cli.main(["publish", str(folder), "--repo-id", "me/x", "--dry-run"]) == 2
    said = [
        line.removeprefix("error: ")
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("error: ")
    ]
    assert len(said) == 1  # one clear message per problem
    at = open_folder(folder)
    at.button(key="models_validate").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == said
    assert "Nothing would be uploaded" in at.warning[0].value


@pytest.mark.parametrize(
    ("folder", "message"),
    [("", "Enter the folder"), ("/no/such/folder", "is not a folder")],
    ids=["empty", "missing"],
)
def test_bad_folder_input_gets_a_message(folder, message):
    at = open_folder(folder)
    assert message in " ".join(m.value for m in [*at.info, *at.error])


# -- the page in the app and in a real browser --------------------------------------------------

LISTED = "pages/models.py" in (ROOT / "app.py").read_text(encoding="utf-8")


@pytest.mark.skipif(not LISTED, reason="app.py does not list pages/models.py yet")
def test_page_is_in_the_app():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Models"
    assert len(at.dataframe[0].value) == len(PUBLISHED)


@pytest.mark.browser
@pytest.mark.skipif(not LISTED, reason="app.py does not list pages/models.py yet")
def test_browser_filters_opens_and_downloads_the_bundled_weights(tmp_path):
    from benchmarks.browser import CHROMIUM, browser_page, serve_app

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    family, name = FAMILIES["toy2d"], "toy2d-grid-minimax"
    weights = family.model(name).snapshot / runfiles.WEIGHTS
    total = len(PUBLISHED)
    with serve_app(tmp_path / "hf-cache") as url, browser_page(height=1200) as page:
        page.goto(f"{url}/models")
        page.get_by_role("heading", name="Models").first.wait_for(timeout=60_000)
        page.get_by_text(f"{total} of {total} published models").wait_for(timeout=60_000)
        page.get_by_role("combobox", name="Family").click()
        page.get_by_role("option", name=family.title).click()
        page.get_by_text(f"{len(family.models)} of {total} published models").wait_for(
            timeout=60_000
        )
        page.get_by_role("combobox", name="Open a model").click()
        page.get_by_role("option", name=name, exact=True).click()
        page.get_by_role("heading", name=f"gan-gallery/{name}").wait_for(timeout=60_000)
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name=runfiles.WEIGHTS).click()
        got = Path(download.value.path()).read_bytes()
        assert download.value.suggested_filename == runfiles.WEIGHTS
        assert hashlib.sha256(got).hexdigest() == sha256(weights)
        assert page.locator("[data-testid='stException']").count() == 0
