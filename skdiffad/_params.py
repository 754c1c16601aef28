"""The parameters every diffusion detector shares, documented once.

:data:`SHARED` holds the one description of each shared parameter; a detector's
class docstring carries the marker :data:`MARKER` where they go, and
:func:`document_shared` writes them there with the defaults of that detector's own
signature (so a default and its documentation cannot drift apart). Where a default
differs between detectors, :data:`SHARED` says why, per detector.

:data:`DEPRECATED` lists the spellings of 0.1 that 0.2 renamed: they keep working for
one release, with a ``FutureWarning`` that names the new spelling.
"""

from __future__ import annotations

import inspect
import textwrap
import warnings

__all__ = ["DEPRECATED", "MARKER", "SHARED", "UNSET", "document_shared", "warn_deprecated"]

#: Where a class docstring wants the shared parameters.
MARKER = "{shared parameters}"

#: Shared parameter -> (type, description, {detector: why its default is what it is}).
SHARED = {
    "n_timesteps": (
        "int",
        "Number of diffusion steps ``T`` of a trained denoiser's noise schedule.", {}),
    "beta_schedule": (
        '{"linear", "cosine", "ve"}',
        "Noise schedule of a trained denoiser: DDPM's linear betas, the improved-DDPM "
        "cosine schedule, or a variance-exploding geometric schedule.", {}),
    "n_scoring_timesteps": (
        "int",
        "Noise levels each multi-step paradigm of a trained denoiser reads "
        "(reconstruction's starting steps ``t0``, the ELBO's strata, the score norm's "
        "grid); more is smoother and proportionally slower.",
        {"TabDiffusionDetector": "8 on tables, where an MLP pass over a row costs "
                                 "microseconds;",
         "DiffusionTSDetector": "2 on series, where every level costs "
                                "``2 * n_inference_steps`` U-Net passes per window;",
         "DiffusionImageDetector": "2 on images, where every level costs "
                                   "``2 * n_inference_steps`` U-Net passes per image;"}),
    "n_inference_steps": (
        "int",
        "DDIM steps of each denoising run of a trained denoiser (reconstruction, "
        "imputation).", {}),
    "max_samples": (
        "int",
        "Most training samples the exact model stores (a seeded random sample above "
        "that): rows, windows of each length, or image patches. It bounds memory and "
        "the cost of each score; a Dask collection is fitted on a uniform sample of "
        "this many rows.", {}),
    "search": (
        '{"exact", "ivf"}',
        "How the exact model finds a sample's nearest stored samples on the CPU: "
        '``"exact"`` compares it with every stored sample; ``"ivf"`` reads only the '
        "stored samples of the 3 of about 2 sqrt(``max_samples``) clusters nearest to it "
        "(an inverted-file index, scanned by faiss: ``pip install faiss-cpu``), many "
        "times faster at scale but approximate, since a true neighbour in an unread "
        "cluster is missed. The index serves samples without gaps, whole-sample "
        "scores and restorations of every entry (not imputation masks or per-place "
        "patches, hence not the image detector's patches, restored from their own border "
        "class) once at least 1024 samples are stored; the exact search serves the "
        "rest and every search on CUDA, where it is a matrix product on the GPU. "
        "Ignored by trained denoisers. See the user guide, \"Search at scale\".", {}),
    "max_steps": (
        "int",
        "The training budget of a network: exactly this many gradient steps (the "
        "epochs they take), whatever the number of samples, so fit time does not grow "
        "with the data. Ignored by the exact model.",
        {"TabDiffusionDetector": "1000 for the table MLP, about 6 s on one CPU core at "
                                 "the default widths;",
         "DiffusionTSDetector": "600 for series, where one U-Net is trained per window "
                                "length; four times as many made no difference on the "
                                "benchmark's SMD evaluation machines "
                                "(``benchmarks/RESULTS_timeseries.md``);",
         "DiffusionImageDetector": "1000 for the image U-Net;"}),
    "batch_size": (
        "int",
        "Samples per gradient step (scoring uses blocks sized by memory).",
        {"TabDiffusionDetector": "256 for table rows, which an MLP takes in one cheap "
                                 "matrix product;",
         "DiffusionTSDetector": "32 for windows, whose U-Net activations grow with the "
                                "window;",
         "DiffusionImageDetector": "32 for images, whose U-Net activations grow with the "
                                   "pixels;"}),
    "learning_rate": ("float", "AdamW learning rate.", {}),
    "weight_decay": ("float", "AdamW weight decay.", {}),
    "ema_decay": (
        "float or None",
        "Decay of an exponential moving average of the weights used for scoring; "
        "``None`` scores with the raw weights.", {}),
    "early_stopping": (
        "bool",
        "Hold out ``validation_fraction`` of the training samples and stop when their "
        "loss has not improved for ``n_iter_no_change`` epochs; the best weights are "
        "kept. Off by default: on small data the held-out loss of a diffusion model "
        "is too noisy a signal and stops training too early.", {}),
    "validation_fraction": (
        "float", "Share of the training samples held out for early stopping.", {}),
    "n_iter_no_change": ("int", "Patience of early stopping, in epochs.", {}),
    "mixed_precision": (
        "bool",
        "Train in bfloat16 autocast on CUDA (faster, and the default there); ``False`` "
        "trains in float32. Ignored on the CPU and by the exact model.", {}),
    "contamination": (
        "float in (0, 0.5]",
        "Expected share of anomalies in the training data; sets ``threshold_`` as in "
        "PyOD.", {}),
    "device": (
        '{"auto", "cpu", "cuda"} or str',
        'Where to train and score; ``"auto"`` uses a GPU when one is visible. A model '
        "fitted on a GPU loads on a CPU-only machine (with a warning).", {}),
    "random_state": (
        "int, RandomState instance or None",
        "Seeds weight initialisation, training noise, the stored samples and the fixed "
        "scoring noise through private generators; fitting and scoring never advance "
        "torch's global generator. ``None`` draws the seed from NumPy's global "
        "generator (scikit-learn's convention): pass an int for reproducible results. "
        "On CUDA, training is not bit-reproducible.", {}),
    "verbose": (
        "int",
        "Progress on stderr. 0: nothing. 1: a progress bar over the epochs of each "
        "network trained (one per window length of a series, named after it), closed with "
        "how training ended: its budget spent, or stopped early and why; and a bar over "
        "the samples when scoring runs longer than two seconds (the exact model's fit "
        "scores every training sample). 2: as 1, plus a line per epoch with its training "
        "and validation losses. When stderr is not a terminal (a log file), each bar is "
        "instead a line when its work ends and one a minute while it runs. Set at fit: "
        "scoring reports as the fitted detector's ``verbose`` says.", {}),
    "max_iter": (
        "int",
        "Deprecated in 0.2 (removed in 0.3): the training budget is ``max_steps``. An int "
        "still trains that many epochs.", {}),
}

#: Spellings of 0.1 that still work in 0.2, with a ``FutureWarning``: old -> (new, what
#: changed). A detector lists the ones it has (``_renamed``).
DEPRECATED = {
    "max_iter": ("max_steps",
                 "max_iter (training epochs) is deprecated: the training budget is "
                 "max_steps, in gradient steps. For this release an int max_iter still "
                 "trains that many epochs (capped by max_steps when it is set to other than "
                 "its default)"),
    "hidden_dims": ("widths", "hidden_dims is now widths"),
    "patch_stride": ("stride", "patch_stride is now stride"),
}

#: The default of a deprecated parameter: not set.
UNSET = "deprecated"


def warn_deprecated(owner, new, what):
    """The ``FutureWarning`` of an old spelling (``what``: what changed)."""
    warnings.warn(f"{owner}: {what}; pass {new} instead. The old spelling will be removed "
                  "in skdiffad 0.3.", FutureWarning, stacklevel=5)


def _default(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _entry(name, kind, text, default, indent):
    body = textwrap.fill(text, width=88 - indent - 4, break_on_hyphens=False)
    return (f"{' ' * indent}{name} : {kind}, default={_default(default)}\n"
            + textwrap.indent(body, " " * (indent + 4)))


def document_shared(cls):
    """Write the shared parameters, with ``cls``'s defaults, where its docstring has
    :data:`MARKER`; a class decorator."""
    doc = cls.__doc__
    if not doc or MARKER not in doc:
        return cls
    line = next(ln for ln in doc.splitlines() if MARKER in ln)
    indent = len(line) - len(line.lstrip())
    defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items()}
    entries = []
    for name, (kind, text, why) in SHARED.items():
        if name not in defaults:
            continue
        if cls.__name__ in why:
            others = "; ".join(v.rstrip(";") for k, v in why.items() if k != cls.__name__)
            text += f" Default: {why[cls.__name__].rstrip(';')}. The others: {others}."
        entries.append(_entry(name, kind, text, defaults[name], indent))
    cls.__doc__ = doc.replace(line, "\n".join(entries))
    return cls
