"""What every family in the registry promises, checked for each one (new families included).

A family is built from its ``tiny`` training preset. Shapes and determinism of its ``sample``
function, a byte-exact save/load round trip of the weights rounded to the storage dtype (saving
leaves the model in memory alone), and strict, safetensors-only loading: a mismatched, corrupt,
foreign or pickled checkpoint is refused with a message, never loaded.
"""

import copy
import dataclasses
import json
import pathlib
import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from hub_models.base import CheckpointError, UnsafeCheckpointError
from hub_models.registry import FAMILIES

NAMES = sorted(FAMILIES)


def small_config(name: str):
    family = FAMILIES[name]
    return family.bundle.config_class(**FAMILIES[name].make_trainer().presets["tiny"])


def build(name: str, config=None, seed: int = 0):
    torch.manual_seed(seed)
    return FAMILIES[name].bundle(config or small_config(name)).eval()


def rounded(model):
    """A copy of ``model`` as saving stores it: floating weights rounded to its storage dtype."""
    model = copy.deepcopy(model)
    model.round_to_storage()
    return model


def bits(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def shapes(model) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def other_config(name: str, config):
    """The same config with one integer size changed so that some weight changes shape."""
    fields = [
        f.name
        for f in dataclasses.fields(config)
        if type(getattr(config, f.name)) is int and getattr(config, f.name) > 0
    ]
    # Prefer a width: the classic "trained with another width" mistake.
    fields.sort(key=lambda n: not any(word in n for word in ("width", "dim", "channels")))
    reference = shapes(build(name, config))
    for field in fields:
        try:
            changed = dataclasses.replace(config, **{field: getattr(config, field) * 2})
        except ValueError:
            continue
        candidate = shapes(build(name, changed))
        if any(candidate.get(k, v) != v for k, v in reference.items()):
            return changed
    raise AssertionError(f"no integer field of {type(config).__name__} changes a weight shape")


def outputs(name: str, model, n: int = 6, seed: int = 3) -> torch.Tensor:
    return FAMILIES[name].sample(model, n, seed)


class TouchOnUnpickle:
    """A pickle payload whose unpickling creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def write_pickle_payload(path: pathlib.Path, marker: pathlib.Path) -> None:
    payload = pickle.dumps({"weight": TouchOnUnpickle(marker)})
    # The payload must really be live, or the "not unpickled" assertions below prove nothing.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()
    path.write_bytes(payload)


def loaders(name: str):
    bundle = FAMILIES[name].bundle
    return {"load_folder": bundle.load_folder, "from_pretrained": bundle.from_pretrained}


LOADERS = ["load_folder", "from_pretrained"]


# ----------------------------------------------------------------------------- registry


def test_every_family_has_a_trainer_with_a_tiny_preset():
    for name, family in FAMILIES.items():
        trainer = family.make_trainer()
        assert trainer.family is family and trainer.family_name == name
        assert "tiny" in trainer.presets and "demo" in trainer.presets
        assert family.models, f"{name} publishes no model"
        assert all(m.repo_id.count("/") == 1 for m in family.models)


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape(name):
    model = build(name)
    a = outputs(name, model, n=5)
    b = outputs(name, model, n=3)
    assert a.shape[0] == 5 and b.shape[0] == 3
    assert a.shape[1:] == b.shape[1:]
    assert torch.isfinite(a.float()).all()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_other_seed_other_output(name):
    model = build(name)
    first = FAMILIES[name].sample(model, 8, 11)
    torch.manual_seed(999)  # the global RNG must not matter
    again = FAMILIES[name].sample(model, 8, 11)
    other = FAMILIES[name].sample(model, 8, 12)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_is_exact(name, tmp_path):
    config = small_config(name)
    model = build(name, config)
    model.save_pretrained(tmp_path)
    for file in ("model.safetensors", "config.json", "README.md"):
        assert (tmp_path / file).is_file(), file
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == json.loads(json.dumps(dataclasses.asdict(config)))

    loaded = FAMILIES[name].bundle.load_folder(tmp_path)
    assert loaded.config == config
    assert not loaded.training
    stored = rounded(model)
    assert torch.equal(outputs(name, stored), outputs(name, loaded))
    reference = stored.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_save_leaves_the_model_in_memory_unchanged(name, tmp_path):
    model = build(name)
    dtype = type(model).storage_dtype
    before = {key: bits(value) for key, value in model.state_dict().items()}
    if dtype != torch.float32:  # else there is nothing to round and the test proves nothing
        assert any(
            not torch.equal(value, value.to(dtype).to(value.dtype))
            for value in model.state_dict().values()
            if value.is_floating_point()
        ), "no weight changes when rounded: pick another seed"
    model.save_pretrained(tmp_path)
    after = {key: bits(value) for key, value in model.state_dict().items()}
    assert after == before  # bit for bit
    saved = load_file(str(tmp_path / "model.safetensors"))
    assert saved.keys() == before.keys()
    for key, value in model.state_dict().items():
        expected = value.to(dtype) if value.is_floating_point() else value
        assert saved[key].dtype == expected.dtype, key
        assert torch.equal(saved[key], expected), key


@pytest.mark.parametrize("name", NAMES)
def test_from_pretrained_local_folder(name, tmp_path):
    model = rounded(build(name))
    model.save_pretrained(tmp_path)
    for source in (tmp_path, str(tmp_path)):
        loaded = FAMILIES[name].bundle.from_pretrained(source)
        assert type(loaded) is FAMILIES[name].bundle
        assert torch.equal(outputs(name, model), outputs(name, loaded))


# ----------------------------------------------------------------------------- strictness


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", NAMES)
def test_weights_of_another_config_are_refused(name, loader, tmp_path):
    config = small_config(name)
    other = other_config(name, config)
    build(name, config).save_pretrained(tmp_path / "model")
    build(name, other).save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", tmp_path / "model" / "model.safetensors")

    with pytest.raises(CheckpointError) as caught:
        loaders(name)[loader](tmp_path / "model")
    message = str(caught.value)
    found, expected = shapes(build(name, other)), shapes(build(name, config))
    differing = [k for k in expected if k in found and found[k] != expected[k]]
    assert differing
    assert any(
        f"'{key}' has shape {found[key]} in the checkpoint but the config expects "
        f"{expected[key]}" in message
        for key in differing
    ), message


@pytest.mark.parametrize("name", NAMES)
def test_missing_and_unexpected_keys_are_named(name, tmp_path):
    build(name).save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    dropped = sorted(state)[0]
    del state[dropped]
    state["stray.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))

    with pytest.raises(CheckpointError) as caught:
        FAMILIES[name].bundle.load_folder(tmp_path)
    message = str(caught.value)
    assert f"missing key '{dropped}'" in message
    assert "unexpected key 'stray.weight' of shape (3,)" in message


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", NAMES)
def test_pickle_only_folder_is_refused_without_unpickling(name, loader, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    build(name).save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "unpickled.marker"
    write_pickle_payload(folder / "pytorch_model.bin", marker)

    def no_torch_load(*args, **kwargs):
        raise AssertionError("torch.load was called on a refused checkpoint")

    monkeypatch.setattr(torch, "load", no_torch_load)
    with pytest.raises(UnsafeCheckpointError) as caught:
        loaders(name)[loader](folder)
    assert "pytorch_model.bin" in str(caught.value)
    assert "not opened" in str(caught.value)
    assert not marker.exists(), "the pickle was unpickled"


@pytest.mark.parametrize("name", NAMES)
def test_pickle_beside_safetensors_is_never_opened(name, tmp_path):
    folder = tmp_path / "model"
    model = rounded(build(name))
    model.save_pretrained(folder)
    marker = tmp_path / "unpickled.marker"
    write_pickle_payload(folder / "pytorch_model.bin", marker)

    loaded = FAMILIES[name].bundle.from_pretrained(folder)
    assert torch.equal(outputs(name, model), outputs(name, loaded))
    assert not marker.exists()


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", NAMES)
def test_unknown_config_field_is_refused(name, loader, tmp_path):
    build(name).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["from_the_future"] = 1
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="from_the_future"):
        loaders(name)[loader](tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_broken_or_missing_config_is_refused(name, tmp_path):
    build(name).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        FAMILIES[name].bundle.load_folder(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        FAMILIES[name].bundle.load_folder(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        FAMILIES[name].bundle.load_folder(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("name", NAMES)
def test_corrupt_weights_are_refused(name, damage, tmp_path):
    build(name).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes(
        {"truncated": raw[: len(raw) // 2], "garbage": b"\x89not safetensors" * 64, "empty": b""}[
            damage
        ]
    )
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        FAMILIES[name].bundle.load_folder(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_missing_folder_or_weights_is_refused(name, tmp_path):
    with pytest.raises(CheckpointError, match="not a folder"):
        FAMILIES[name].bundle.load_folder(tmp_path / "nowhere")
    build(name).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        FAMILIES[name].bundle.load_folder(tmp_path)
