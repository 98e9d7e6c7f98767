"""GAN Gallery: `streamlit run app.py`. Pages come from the registry; the sidebar is shared.

Page files live in pages/. Once st.navigation is called, Streamlit stops treating that folder
as an automatic multipage app (tests/test_app.py makes AppTest agree with `streamlit run`).
"""

import streamlit as st

from gallery.common import sidebar_ui
from hub_models.registry import FAMILIES

st.set_page_config(page_title="GAN Gallery", page_icon=":material/auto_awesome:", layout="wide")

pages = [st.Page("pages/home.py", title="Gallery", icon=":material/home:", default=True)]
pages += [
    st.Page(f"pages/{family.page}", title=family.title, icon=family.icon, url_path=family.name)
    for family in FAMILIES.values()
]
navigation = st.navigation(pages)
sidebar_ui()
navigation.run()
