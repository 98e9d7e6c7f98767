"""GAN Gallery: `streamlit run app.py`. Pages come from the registry; the sidebar is shared.

Page files live in app_pages/, not pages/: `streamlit run` ignores a pages/ folder once
st.navigation is called, but AppTest still registers it as an automatic multipage app, and its
reruns then land on the bare page file without this script's shared sidebar.
"""

import streamlit as st

from gallery.common import sidebar_ui
from hub_models.registry import FAMILIES

st.set_page_config(page_title="GAN Gallery", page_icon=":material/auto_awesome:", layout="wide")

pages = [st.Page("app_pages/home.py", title="Gallery", icon=":material/home:", default=True)]
pages += [
    st.Page(f"app_pages/{family.page}", title=family.title, icon=family.icon, url_path=family.name)
    for family in FAMILIES.values()
]
navigation = st.navigation(pages)
sidebar_ui()
navigation.run()
