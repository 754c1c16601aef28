"""The paradigm objects: their registry, their options checked once, their
properties, pickling and configs, and the models built on them."""

import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from skdiffad._core import (
    PARADIGMS,
    ArraySamples,
    Density,
    Discriminative,
    ExactModel,
    Feature,
    Imputation,
    LearnedModel,
    Paradigm,
    Prediction,
    Reconstruction,
    ScaleEnsemble,
    Score,
    ScoringPlan,
    Time,
    TrainingConfig,
    grating_masks,
    harmonise,
    make_paradigm,
    make_schedule,
)
from skdiffad._core.features import ModuleFeatures

from .helpers import seeded

MLP = {"name": "mlp", "hidden_dims": (8,)}
CONV2D = {"name": "conv2d", "widths": (4, 8), "kernel_size": 3}
IMAGE = (1, 8, 8)


def masks(length=3):
    return grating_masks(length, 2)


def tiny_extractor():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())


#: One paradigm of each kind, with options other than its defaults.
BUILT = {
    "reconstruction": lambda: Reconstruction(n_grid=3, n_inference_steps=2,
                                             t0_range=(0.05, 0.3), guidance=0.25),
    "imputation": lambda: Imputation(n_inference_steps=2, hidden=masks()),
    "density": lambda: Density(n_grid=3),
    "score": lambda: Score(n_grid=3),
    "time": lambda: Time(n_bins=4, t_max=30),
    "feature": lambda: Feature(n_grid=2, n_inference_steps=2, noise="simplex", guidance=0.5,
                               feature_extractor=tiny_extractor()),
    "discriminative": lambda: Discriminative(n_grid=2, n_inference_steps=2,
                                             head={"widths": [4]}, head_steps=3,
                                             head_defects="generated"),
    "prediction": lambda: Prediction(hidden=masks()),
}


def same(a, b):
    """Equal option values: tensors and modules by value, the rest by ``==``."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        return (type(a) is type(b) and sa.keys() == sb.keys()
                and all(torch.equal(sa[k], sb[k]) for k in sa))
    return a == b


def same_config(a, b):
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


# ------------------------------------------------------------- registry
def test_the_registry_names_every_paradigm_once():
    assert list(PARADIGMS) == ["reconstruction", "imputation", "density", "score", "time",
                               "feature", "discriminative", "prediction"]
    for name, cls in PARADIGMS.items():
        assert issubclass(cls, Paradigm) and cls.name == name
        paradigm = make_paradigm(name, **NEEDS.get(name, {}))
        assert type(paradigm) is cls and paradigm.name == name


def test_make_paradigm_passes_options_and_refuses_others_naming_them():
    paradigm = make_paradigm("reconstruction", n_grid=3, guidance=0.5)
    assert paradigm.n_grid == 3 and paradigm.guidance == 0.5
    choices = r"\('reconstruction', 'imputation', .*'discriminative', 'prediction'\)"
    with pytest.raises(ValueError, match="unknown paradigm 'likelihood': paradigm must be one "
                                         "of " + choices):
        make_paradigm("likelihood")
    with pytest.raises(ValueError, match="unknown paradigm None"):
        make_paradigm(None)
    with pytest.raises(ValueError, match=r"paradigm 'time' takes no option 'n_grid'; its options "
                                         r"are \('n_bins', 't_max'\)"):
        make_paradigm("time", n_grid=3)
    assert make_paradigm(paradigm) is paradigm  # a built paradigm is taken as it is
    with pytest.raises(ValueError, match="give them to its constructor"):
        make_paradigm(paradigm, n_grid=4)


#: Options a paradigm cannot be built without.
NEEDS = {"prediction": {"hidden": torch.ones(1, 1, 1, dtype=torch.bool)}}


@pytest.mark.parametrize(("name", "generative", "event_rank", "elementwise", "exact"), [
    ("reconstruction", True, None, True, True),
    ("imputation", False, None, True, True),
    ("density", True, None, True, False),
    ("score", True, None, False, False),
    ("time", False, None, False, True),
    ("feature", True, 3, True, False),
    ("discriminative", True, 3, True, False),
    ("prediction", False, None, True, False),
])
def test_what_each_paradigm_is(name, generative, event_rank, elementwise, exact):
    paradigm = make_paradigm(name, **NEEDS.get(name, {}))
    assert paradigm.generative is generative and PARADIGMS[name].generative is generative
    assert paradigm.event_rank == event_rank
    assert paradigm.elementwise is elementwise and paradigm.exact is exact


def test_simplex_noise_needs_images_whatever_the_paradigm():
    assert Reconstruction(noise="simplex").event_rank == 3
    assert Feature(noise="simplex").event_rank == Discriminative().event_rank == 3
    assert all(make_paradigm(name).noise == "gaussian" for name in PARADIGMS)
    assert all(make_paradigm(name).event_rank is None for name in PARADIGMS
               if name not in ("feature", "discriminative"))


# ----------------------------------------------------------- validation
@pytest.mark.parametrize(("name", "options", "error", "message"), [
    ("reconstruction", {"n_grid": 0}, ValueError, "n_grid must be an integer >= 1, got 0"),
    ("reconstruction", {"n_grid": 2.5}, ValueError, "n_grid must be an integer"),
    ("reconstruction", {"n_grid": True}, ValueError, "n_grid must be an integer"),
    ("reconstruction", {"n_inference_steps": -1}, ValueError, "n_inference_steps must be"),
    ("reconstruction", {"t0_range": (0.3, 0.1)}, ValueError, "t0_range must be"),
    ("reconstruction", {"t0_range": (0.1, 1.5)}, ValueError, "t0_range must be"),
    ("reconstruction", {"t0_range": 0.2}, ValueError, "t0_range must be a pair"),
    ("reconstruction", {"noise": "perlin"}, ValueError, "noise must be one of"),
    ("reconstruction", {"guidance": -0.1}, ValueError, "guidance must be a finite number"),
    ("reconstruction", {"guidance": float("inf")}, ValueError, "guidance must be a finite"),
    ("reconstruction", {"guidance": "strong"}, ValueError, "guidance must be a finite"),
    ("imputation", {"n_inference_steps": 0}, ValueError, "n_inference_steps must be"),
    ("imputation", {"hidden": torch.zeros(4, dtype=torch.bool)}, ValueError,
     r"hidden must hold at least one mask, with shape \(M, \*mask_shape\)"),
    ("imputation", {"hidden": "stripes"}, TypeError, "hidden must be a boolean tensor"),
    ("density", {"n_grid": 0}, ValueError, "n_grid must be"),
    ("density", {"noise": "simplex"}, ValueError, "'density' takes no option 'noise'"),
    ("score", {"n_grid": -3}, ValueError, "n_grid must be"),
    ("time", {"n_bins": 1}, ValueError, "n_bins must be an integer >= 2, got 1"),
    ("time", {"t_max": 0}, ValueError, "t_max must be a positive integer or None"),
    ("feature", {"guidance": float("nan")}, ValueError, "guidance must be a finite"),
    ("feature", {"feature_extractor": "resnet18"}, TypeError,
     "feature_extractor must be a torch.nn.Module or None, got str"),
    ("discriminative", {"head": [16, 32]}, TypeError, "head must be a dict"),
    ("discriminative", {"head_steps": 0}, ValueError, "head_steps must be a positive integer"),
    ("discriminative", {"head_defects": "perlin"}, ValueError, "head_defects must be one of"),
    ("discriminative", {"head_defects": "generated", "noise": "simplex"}, ValueError,
     "head_defects='generated' .* needs noise='gaussian'"),
    ("discriminative", {"guidance": 0.5}, ValueError, "takes no option 'guidance'"),
])
def test_a_bad_option_names_itself(name, options, error, message):
    with pytest.raises(error, match=message):
        make_paradigm(name, **options)
    if error is TypeError or "takes no option" not in message:  # the class checks alike
        with pytest.raises(error, match=message):
            PARADIGMS[name](**options)


def test_options_are_normalised_once():
    paradigm = Reconstruction(t0_range=[0, 1], n_grid=np.int64(3), guidance=1)
    assert paradigm.t0_range == (0.0, 1.0) and type(paradigm.n_grid) is int
    assert type(paradigm.guidance) is float
    imputation = Imputation(hidden=np.array([[1, 0], [0, 1]]))
    assert imputation.hidden.dtype == torch.bool
    assert Discriminative(head={"widths": [4, 8]}).head == {"widths": (4, 8)}


def test_imputation_needs_its_masks_to_score():
    with pytest.raises(ValueError, match="imputation needs its masks"):
        Imputation().plan(make_schedule("linear", 20), (3,), seeded(0))
    for build in (lambda: ExactModel("imputation"), lambda: LearnedModel("imputation", MLP)):
        with pytest.raises(ValueError, match="imputation needs its masks"):
            build()


# ------------------------------------------------------- image paradigms
@pytest.mark.parametrize(("paradigm", "who"), [
    (Feature(), "paradigm 'feature'"), (Discriminative(), "paradigm 'discriminative'"),
    (Reconstruction(noise="simplex"), "noise='simplex'")])
@pytest.mark.parametrize("event_shape", [(3,), (2, 16)])
def test_image_paradigms_refuse_other_samples_once_before_anything_is_built(paradigm, who,
                                                                            event_shape):
    message = rf"{who} needs images: samples of shape \(C, H, W\), got samples of shape"
    with pytest.raises(ValueError, match=message):
        paradigm.check_event_shape(event_shape)
    paradigm.check_event_shape(IMAGE)
    samples = ArraySamples(np.zeros((8,) + event_shape, dtype=np.float32))
    model = LearnedModel(paradigm, MLP)
    with pytest.raises(ValueError, match=message):
        model.fit(samples, seed=0, device="cpu")
    assert not hasattr(model, "device_") and not hasattr(model, "networks_")


# ------------------------------------------------------ plans and losses
@pytest.mark.parametrize("name", list(PARADIGMS))
def test_each_paradigm_draws_its_plan_and_loss(name):
    paradigm = BUILT[name]()
    schedule = make_schedule("linear", 40)
    event_shape = IMAGE if paradigm.event_rank == 3 else (2, 3)
    plan = paradigm.plan(schedule, event_shape, seeded(3))
    again = paradigm.plan(schedule, event_shape, seeded(3))
    assert isinstance(plan, ScoringPlan)
    assert plan.paradigm == ("reconstruction" if name in ("feature", "discriminative") else name)
    assert torch.equal(plan.timesteps, again.timesteps)
    assert (plan.noise is None) == (name in ("score", "time", "prediction"))
    if plan.noise is not None:
        assert torch.equal(plan.noise, again.noise)
    if name == "time":
        torch.testing.assert_close(plan.weights, plan.timesteps / 30)
    loss = paradigm.training_loss(schedule, device="cpu", mask_input=False)
    assert callable(loss)


def test_the_time_classifier_covers_what_the_noise_allows_unless_told():
    schedule = make_schedule("linear", 100)
    assert Time().max_step(schedule) == schedule.last_step_below(2.0)
    assert Time(t_max=40).max_step(schedule) == 40
    with pytest.raises(ValueError, match="t_max=120 is beyond"):
        Time(t_max=120).plan(schedule, (3,), seeded(0))


def test_networks_are_configured_from_the_samples_and_the_paradigm():
    config = Imputation(hidden=masks(8)).network_config(
        {"name": "conv1d", "widths": (4,)}, (2, 8), n_timesteps=30, mask_input=True)
    assert config == {"name": "conv1d", "widths": (4,), "in_channels": 6, "out_channels": 2,
                      "time_embed_dim": 64, "n_timesteps": 30, "gaussian_skip": True}
    config = Time(n_bins=5).network_config(MLP, (3,), n_timesteps=30, mask_input=True)
    assert (config["in_channels"], config["out_channels"]) == (6, 5)
    assert config["time_embed_dim"] == 0 and not config["gaussian_skip"]
    with pytest.raises(ValueError, match="only the 'mlp' network"):
        Time().network_config(CONV2D, IMAGE, n_timesteps=30, mask_input=False)
    with pytest.raises(ValueError, match="needs the 'conv2d' network"):
        Feature().network_config(MLP, IMAGE, n_timesteps=30, mask_input=False)
    own = Feature(feature_extractor=tiny_extractor())  # a user extractor: any network
    assert own.network_config(MLP, IMAGE, n_timesteps=30, mask_input=False)["in_channels"] == 1


@pytest.mark.parametrize(("paradigm", "message"), [
    (Time(), "paradigm 'time' trains a time classifier"),
    (Imputation(), "paradigm 'imputation' trains a conditional imputer"),
    (Reconstruction(noise="simplex"), "trained on simplex noise"),
])
def test_what_cannot_sample_says_why(paradigm, message):
    with pytest.raises(ValueError, match=message):
        paradigm.check_generative()


# ------------------------------------------------------- configs, pickles
@pytest.mark.parametrize("name", list(PARADIGMS))
def test_every_paradigm_rebuilds_from_its_config_and_pickles(name):
    for paradigm in (make_paradigm(name), BUILT[name]()):
        config = paradigm.get_config()
        assert list(config) == list(type(paradigm).options)
        rebuilt = type(paradigm).from_config(config)
        assert type(rebuilt) is type(paradigm) and same_config(rebuilt.get_config(), config)
        assert same_config(make_paradigm(name, **config).get_config(), config)
        copy = pickle.loads(pickle.dumps(paradigm))
        assert type(copy) is type(paradigm) and same_config(copy.get_config(), config)
        plain = {k: v for k, v in config.items()
                 if not isinstance(v, (torch.Tensor, nn.Module))}
        through_json = json.loads(json.dumps(plain))  # tuples come back as lists
        restored = type(paradigm).from_config({**config, **through_json})
        assert same_config(restored.get_config(), config)


def test_a_config_gives_tensors_and_modules_as_they_are():
    hidden = masks(5)
    assert torch.equal(Imputation(hidden=hidden).get_config()["hidden"], hidden)
    module = tiny_extractor()
    extractor = Feature(feature_extractor=module).get_config()["feature_extractor"]
    assert isinstance(extractor, ModuleFeatures) and extractor.module is not module
    assert same(extractor.module, module) and not extractor.training and module.training
    assert "tensor of shape (2, 5)" in repr(Imputation(hidden=hidden))


# --------------------------------------------------------- fitted models
def training(steps=3):
    return TrainingConfig(max_iter=100, max_steps=steps, batch_size=16, early_stopping=False,
                          mixed_precision=False)


def fitted_model(name, paradigm=None, images=None):
    if images is None:
        images = name in ("feature", "discriminative")
    if images:
        x = np.random.default_rng(0).normal(size=(16,) + IMAGE).astype(np.float32)
        network = CONV2D
    else:
        x = np.random.default_rng(0).normal(size=(24, 3)).astype(np.float32)
        network = MLP
    paradigm = BUILT[name]() if paradigm is None else paradigm
    model = LearnedModel(paradigm, network, n_timesteps=30, training=training())
    history = model.fit(ArraySamples(x), seed=0, device="cpu")
    return model, history, ArraySamples(x)


def errors_of(model, samples):
    blocks = list(model.errors(samples))
    sums = np.concatenate([b[2] for b in blocks])
    counts = None if blocks[0][3] is None else np.concatenate([b[3] for b in blocks])
    return sums, counts


@pytest.mark.parametrize("name", list(PARADIGMS))
def test_a_fitted_model_pickles_and_rebuilds_to_the_same_errors_for_every_paradigm(name):
    model, history, samples = fitted_model(name)
    expected, expected_counts = errors_of(model, samples)
    assert ((expected_counts is None) == (not model.paradigm.elementwise))
    assert ("head" in history) == (name == "discriminative")
    assert set(model.networks_) == ({"denoiser", "head"} if name == "discriminative"
                                    else {"denoiser"})
    copy = pickle.loads(pickle.dumps(model))
    assert type(copy.paradigm) is type(model.paradigm) and copy.paradigm is not model.paradigm
    got, got_counts = errors_of(copy, samples)
    assert np.array_equal(got, expected)
    assert got_counts is None if expected_counts is None else np.array_equal(got_counts,
                                                                             expected_counts)
    # the paradigm's config is all it takes to train the same model again
    config = model.paradigm.get_config()
    again, _, _ = fitted_model(name, type(model.paradigm).from_config(config))
    assert np.array_equal(errors_of(again, samples)[0], expected)


def test_a_model_takes_a_name_for_a_paradigm_with_its_defaults():
    model = LearnedModel("density", MLP)
    assert type(model.paradigm) is Density and model.paradigm.n_grid == 8
    with pytest.raises(ValueError, match="unknown paradigm"):
        LearnedModel("likelihood", MLP)


def test_the_exact_model_takes_exact_paradigms_only():
    for name in ("density", "score", "feature", "discriminative"):
        with pytest.raises(ValueError, match=r"paradigm must be one of \('reconstruction', "
                                             r"'imputation', 'time'\)"):
            ExactModel(make_paradigm(name))
    assert ExactModel(Imputation(hidden=masks())).paradigm.hidden is not None


def test_models_say_whether_they_train():
    assert LearnedModel.trains is True and ExactModel.trains is False
    exact, learned = ExactModel("time"), LearnedModel("time", MLP)
    assert ScaleEnsemble([exact, exact]).trains is False
    assert ScaleEnsemble([exact, learned]).trains is True


def test_harmonise_reads_a_fitted_model_through_its_public_surface():
    model, _, samples = fitted_model("reconstruction", Reconstruction(n_grid=2), images=True)
    x = samples.take(np.arange(4))[0]
    images, masks_ = harmonise(model, x, seed=0, source=x, n_steps=3, n_resample=1)
    again, _ = harmonise(model, x, seed=0, source=x, n_steps=3, n_resample=1)
    assert images.shape == x.shape and masks_.shape == (4, 1, 8, 8)
    assert torch.equal(images, again)
    outside = (masks_ < 0.5).expand_as(x)
    assert torch.equal(images[outside], x[outside]) and (images != x).any()
    simplex, _, _ = fitted_model("reconstruction", Reconstruction(n_grid=2, noise="simplex"),
                                 images=True)
    with pytest.raises(ValueError, match="trained on simplex noise"):
        harmonise(simplex, x, seed=0, source=x)


# ------------------------------------------- conditional and plain prediction
def _pairs(n=256, seed=0):
    """Samples ``(a, 2a, -a)``: the last two entries follow from the first."""
    a = np.random.default_rng(seed).normal(size=(n, 1)).astype(np.float32)
    return np.hstack([a, 2 * a, -a])


LAST_TWO = torch.tensor([[False, True, True]])


def test_prediction_learns_the_hidden_part_from_the_visible_one():
    x = _pairs()
    errors = {}
    for steps in (1, 300):
        model = LearnedModel(Prediction(hidden=LAST_TWO), {"name": "mlp", "hidden_dims": (32,)},
                             n_timesteps=30, training=training(steps))
        model.fit(ArraySamples(x), seed=0, device="cpu")
        sums, counts = errors_of(model, ArraySamples(_pairs(64, 1)))
        assert np.all(counts[:, 0] == 0) and np.all(counts[:, 1:] == 1)  # only hidden scored
        errors[steps] = sums[:, 1:].mean()
    assert errors[300] < 0.1 * errors[1]
    assert model.networks_["denoiser"].config["in_channels"] == 9  # 3 x (hidden, visible, mask)
    assert not model.networks_["denoiser"].config["gaussian_skip"]


def test_prediction_needs_its_masks_to_train_or_score():
    with pytest.raises(ValueError, match="needs the masks"):
        LearnedModel(Prediction(), MLP, n_timesteps=30,
                     training=training()).fit(ArraySamples(_pairs()), seed=0, device="cpu")


def test_imputation_can_train_on_its_scoring_masks_alone():
    """Trained on the masks it scores with, the imputer is a conditional generator of
    that part, and learns it far better than from random masks in the same steps."""
    errors = {}
    for masks_ in ("scoring", "random"):
        paradigm = Imputation(hidden=LAST_TWO, training_masks=masks_, n_inference_steps=10)
        assert paradigm.get_config()["training_masks"] == masks_
        model = LearnedModel(paradigm, {"name": "mlp", "hidden_dims": (64, 64)},
                             n_timesteps=100,
                             training=TrainingConfig(max_iter=1000, max_steps=200, batch_size=64,
                                                     early_stopping=False,
                                                     mixed_precision=False))
        model.fit(ArraySamples(_pairs()), seed=0, device="cpu")
        sums, counts = errors_of(model, ArraySamples(_pairs(64, 1)))
        assert np.all(counts[:, 1:] == 1) and np.all(counts[:, 0] == 0)
        errors[masks_] = sums[:, 1:].mean()
    assert errors["scoring"] < 0.02 and errors["scoring"] < 0.2 * errors["random"]
    with pytest.raises(ValueError, match="training_masks='scoring' trains on the masks"):
        Imputation(training_masks="scoring")
    with pytest.raises(ValueError, match="training_masks must be one of"):
        Imputation(hidden=LAST_TWO, training_masks="all")
