"""AppTest as a visitor meets the app: cold caches, offline on the bundled snapshots, and the
page files run through app.py's navigation as `streamlit run` runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest, app_test

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120


class NavigationPagesManager(PagesManager):
    """AppTest as `streamlit run` sees this app once app.py has called st.navigation.

    Both start by treating a pages/ folder beside the main script as an automatic multipage
    app (Streamlit's first multipage API). Under `streamlit run`, app.py's start-up hook and
    its st.navigation call turn that off for the life of the server. AppTest resets the flag
    before every run, so a rerun after switch_page would run the bare page file without
    app.py's shared sidebar.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


def cold_offline_app(monkeypatch, tmp_path) -> Iterator[None]:
    """The body of each AppTest module's autouse fixture."""
    monkeypatch.setattr(app_test, "PagesManager", NavigationPagesManager)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("GAN_GALLERY_ORG", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def open_page(page: str | None = None) -> AppTest:
    """The app, then ``page`` (a file under pages/) through its navigation."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"pages/{page}").run()
        assert not at.exception, at.exception
    return at
