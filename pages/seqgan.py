"""Text generation (SeqGAN): MLE-only and SeqGAN side by side, tokens coloured by reward."""

import pandas as pd
import streamlit as st

from gallery import seqgan as gs
from gallery.common import (
    device,
    examples_ui,
    load_published,
    model_picker_ui,
    published_file,
    seed_ui,
    share_url,
    url_state,
)
from gallery.models import models_link_ui
from hub_models import runfiles
from hub_models.base import CheckpointError
from hub_models.textdata import TextDataError

st.title("Text generation (SeqGAN)")
SHARED = {  # what a link to this page reproduces
    "sg_corpus": tuple(gs.corpora()),
    "sg_seed": int,
    "sg_n": int,
    "sg_temperature": float,
    "sg_rollouts": int,
}
url_state(SHARED)
examples_ui(
    {
        "Names, played safe": {
            "sg_source": "Published",
            "sg_corpus": "names",
            "sg_temperature": 0.7,
        },
        "Chinese idioms": {"sg_source": "Published", "sg_corpus": "idioms", "sg_temperature": 1.0},
        "Fortunes, wild": {
            "sg_source": "Published",
            "sg_corpus": "fortunes",
            "sg_temperature": 1.3,
        },
    },
    "sg_example",
)
st.write(
    "An LSTM language model trained by maximum likelihood (left), then further trained as a "
    "policy whose reward is a CNN discriminator's verdict, estimated for every prefix by "
    "Monte-Carlo roll-outs (right; Yu et al. 2017). Same seed, same temperature on both sides."
)


def choose_published(box) -> str:
    corpus = box.selectbox(
        "Corpus", gs.corpora(), format_func=lambda c: gs.CORPUS_LABELS.get(c, c), key="sg_corpus"
    )
    return gs.model_name(corpus)


choice = model_picker_ui(
    "seqgan",
    "sg",
    choose_published,
    "python -m training train seqgan --corpus=... --data YOUR.txt --out DIR",
)
model, user_data = choice.model, choice.data
models_link_ui("seqgan", choice.key if choice.where else None)
config = model.config

samples_tab, curves_tab = st.tabs(["Samples", "Oracle experiment"])

with samples_tab:
    controls = st.columns(4)
    sample_seed = seed_ui("sg_seed", controls[0])
    count = controls[1].slider("Samples", 1, 30, 10, key="sg_n")
    temperature = controls[2].slider(
        "Temperature",
        0.5,
        1.5,
        1.0,
        0.05,
        key="sg_temperature",
        help="Logits are divided by it: below 1 is safer and less varied, above 1 wilder.",
    )
    rollouts = controls[3].select_slider(
        "Roll-outs per token",
        [0, 4, 8, 16],
        value=8,
        key="sg_rollouts",
        help="How many completions of each prefix D scores to colour the token; 0 turns "
        "colour off.",
    )
    st.caption(
        "Colour: the token's Monte-Carlo reward, D's mean probability of *real* over "
        "completions of the prefix ending at it (red: judged fake, green: judged real)."
    )
    columns = st.columns(2)
    rows = {}
    for column, (which, label) in zip(columns, gs.SIDES.items(), strict=True):
        found = gs.generate_samples(model, count, sample_seed, temperature, which)
        rewards = gs.token_rewards(model, found.tokens, rollouts, sample_seed) if rollouts else None
        column.subheader(label)
        column.html(gs.rewards_html(found, rewards))
        if config.corpus == "oracle":
            rows[label] = {"oracle NLL (quality)": gs.oracle_nll(model, found.tokens)}
        else:
            try:
                rows[label] = gs.text_metrics(model, found.texts, user_data)
            except (TextDataError, OSError) as error:
                column.warning(
                    f"The corpus cannot be read, so novelty and BLEU are not shown: {error}"
                )
    if rows and config.corpus == "oracle":
        st.markdown(
            "**These samples:** mean per-token NLL under the oracle that made the training "
            "data (lower: more like it)"
        )
        st.dataframe(pd.DataFrame(rows).T.style.format("{:.3f}"))
    elif rows:
        st.markdown(
            "**These samples:** *novelty* is the share of samples not found in the training "
            "set. *BLEU-4* counts how many of a sample's runs of 1 to 4 tokens also occur in "
            "held-out real text (0 to 1; higher reads more like the real thing). *Self-BLEU-4* "
            "is the same score of each sample against the other samples: high means the "
            "samples repeat each other, lower is more varied."
        )
        st.dataframe(pd.DataFrame(rows).T.style.format("{:.3f}"))

with curves_tab:
    oracle = gs.model_name("oracle")
    try:
        replay = published_file("seqgan", oracle, runfiles.REPLAY)
    except CheckpointError as error:
        st.warning(str(error))
        replay = None
    curves = gs.nll_curves(replay) if replay is not None else None
    if curves is None:
        st.info("The oracle model's NLL curves are not available.")
    else:
        oracle_model, _ = load_published("seqgan", oracle, device())
        c = oracle_model.config
        st.write(
            "The paper's synthetic benchmark: an LSTM with random N(0, 1) weights is the "
            "'real' data source. Oracle NLL scores the generator's samples under that oracle "
            "(quality); held-out NLL scores unseen oracle samples under the generator "
            "(diversity). The adversarial phase should lower the first without raising the "
            "second."
        )
        st.plotly_chart(gs.curves_figure(curves, c.mle_epochs, c.steps), key="sg_curves")
        table = published_file("seqgan", oracle, runfiles.BENCHMARK)
        if table is not None:
            st.markdown(table.read_text(encoding="utf-8"))

share_url(SHARED)
