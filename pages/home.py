"""Home: one card per family, from the registry."""

import streamlit as st

from gallery.common import published_file, resolve_published
from gallery.models import models_link_ui
from hub_models import runfiles
from hub_models.base import CheckpointError
from hub_models.registry import FAMILIES

st.title("GAN Gallery")
st.write(
    "Live demos of classic generative models, each running on weights this project trained "
    "and published. Every model is a Hub repo with safetensors weights, a config and a model "
    "card; the app works offline on the bundled snapshots."
)

columns = st.columns(3)
for index, family in enumerate(FAMILIES.values()):
    with columns[index % 3].container(border=True):
        st.subheader(family.title)
        published = family.featured_model
        try:
            where = resolve_published(family.name, published.name)
        except CheckpointError as error:
            st.warning(str(error))
            where = None
        picture = published_file(family.name, published.name, runfiles.SAMPLE) if where else None
        if picture is not None:
            st.image(
                str(picture), width="stretch", caption=f"{published.title}: {family.sample_caption}"
            )
        st.write(family.tagline)
        if where is not None:
            st.caption(f"{len(family.models)} published models · e.g. {where.label}")
        st.page_link(f"pages/{family.page}", label=f"Open {family.title}", icon=family.icon)
        models_link_ui(family.name, published.name)
