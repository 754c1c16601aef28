"""TabDiffusionDetector: diffusion-model anomaly detection for tabular data."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._core.paradigms import PARADIGMS
from ._params import UNSET, document_shared, warn_deprecated
from .base import BaseDiffusionDetector, _check_n_samples, _positive_ints, _seed_from
from .modalities import TableModality

__all__ = ["TabDiffusionDetector"]

#: Scorings of the table detector (``"time"`` is the exact model's and the MLP's).
TABLE_SCORINGS = ("time", "density", "reconstruction", "score")


@document_shared
class TabDiffusionDetector(BaseDiffusionDetector):
    """Anomaly detector for tables, built on a denoising diffusion model.

    A row is scored by how poorly a diffusion model of the training rows explains
    it, under one of five paradigms of the survey by Liu et al. (2025): by
    default the exact (non-parametric) diffusion of the training rows, or a
    residual MLP trained by denoising (DDPM). Numeric and categorical columns
    and missing values are handled natively. Works as a PyOD detector and a
    scikit-learn estimator (Pipelines, ``clone``, ``GridSearchCV``, pickling).

    Parameters
    ----------
    denoiser : {"exact", "mlp"}, default="exact"
        The model of the training rows.

        - ``"exact"``: the *exact* diffusion of the stored training rows (at most
          ``max_samples``), whose noised marginals are known in closed form: no
          network is trained, fitting stores the rows and a score is a
          nearest-neighbour query. It won the tabular benchmark
          (``benchmarks/RESULTS_tabular.md``), hence the default.
        - ``"mlp"``: a residual MLP (``widths``) trained by denoising (DDPM), which
          generalises between training rows instead of memorising them, and can
          draw new rows (:meth:`sample`).
    scoring : {"time", "density", "reconstruction", "score"}, default="time"
        How a row is scored; higher is always more abnormal. The user guide
        compares them on the benchmark and says when to pick which.

        - ``"time"``: diffusion-time estimation (DTE): how much noise the row
          looks as if it carries. With ``denoiser="exact"`` the score is the
          posterior mean of ``log sigma`` under a scale-free prior, from the
          row's distances to its nearest stored rows (DTE-NP, with the
          continuous posterior in place of a grid argmax); its ranking is close
          to that of the nearest stored row's distance. A stored row identical
          to the scored row is left out once, so ``decision_scores_`` are
          leave-one-out scores and a new row equal to a training row scores as
          that training row does. With ``denoiser="mlp"``: the expected
          diffusion time under a trained classifier over ``n_bins`` time bins,
          one forward pass a row.
        - ``"density"`` (``"mlp"``): the negative ELBO of the trained denoiser,
          a bound on ``-log p(x)`` in nats per observed feature; 2 x
          (``n_scoring_timesteps`` + 1) network passes per row.
        - ``"reconstruction"`` (``"mlp"``): noise the row part-way (DDPM forward
          process), denoise it with DDIM, and measure the squared error; averaged
          over ``n_scoring_timesteps`` starting levels and an antithetic noise
          pair.
        - ``"score"`` (``"mlp"``): the norm of the learned score
          ``|grad log p_t|`` at the row's forward mean, averaged over noise
          levels.

        ``"nonparametric"`` is 0.1's name of ``denoiser="exact", scoring="time"``
        (deprecated). A learned scoring with ``denoiser="exact"`` is 0.1's
        spelling of ``denoiser="mlp"``: for this release it implies it, with a
        ``FutureWarning``.
    novelty : bool, default=True
        Whether the training rows are all normal (``True``: novelty detection,
        the semi-supervised setting) or may hold anomalies themselves
        (``False``: outlier detection), as in scikit-learn's
        ``LocalOutlierFactor``. Used by the exact model: with ``False`` it gives
        the ``n_neighbors`` nearest stored rows equal weight (their mean
        distance) instead of trusting the nearest, so that a cluster or
        duplicates of anomalies do not vouch for each other. A trained network
        ignores it.
    n_neighbors : int or "auto", default="auto"
        Stored rows each exact score looks at. ``"auto"``: 10 with
        ``novelty=True`` (the posterior's weights fall off as ``r^{-d}``, so more
        changes nothing), and ``max(20, ceil(contamination x n_stored))`` with
        ``novelty=False``, enough to see past a cluster of the expected number of
        anomalies. With ``novelty=False`` and ``"auto"`` the exact model stores a
        seeded uniform sample of at most ``127 / contamination`` training rows
        (1270 at the default contamination, fewer than ``max_samples`` allows),
        so that at most 127 neighbours are read, from a search index: the same
        share of a smaller sample. On the 25 ADBench sets this moved the mean
        AUROC by -0.0002 (one-class) and +0.0007 (unsupervised), no set by more
        than 0.01 but 26_optdigits unsupervised (+0.03), and fits 20k x 5 four
        times faster. An explicit ``n_neighbors`` stores up to ``max_samples``
        rows as before.
    widths : tuple of int, default=(128, 128)
        ``"mlp"``: widths of the residual blocks (the depth is the length).
    n_bins : int, default=7
        ``denoiser="mlp", scoring="time"``: time bins of the classifier.
    {shared parameters}
    hidden_dims : tuple of int, default="deprecated"
        Deprecated in 0.2 (removed in 0.3): 0.1's name of ``widths``.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        Anomaly scores of the training rows (leave-one-out for the exact model:
        a row is never its own neighbour).
    threshold_ : float
        Score above which :meth:`predict` calls a row an anomaly (the
        ``1 - contamination`` quantile of ``decision_scores_``; when it falls
        on a block of tied scores whose flagging comes closer to
        ``contamination``, midway below the block).
    labels_ : ndarray of shape (n_samples,)
        0/1 labels of the training rows (1 = anomaly).
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names seen in fit, when ``X`` was a DataFrame with string names.
    modality_ : TableModality
        The fitted plug-in of tables (:mod:`skdiffad.modalities`): the column
        encoder and the reduction.
    encoder_ : object
        The fitted column encoder (standardisation and one-hot codes).
    model_ : object
        The fitted model, replaced as a whole by every fit: the exact model
        (the stored rows, at most ``max_samples``, with missing values at 0, the
        training mean; its search index is rebuilt when the detector is
        loaded, never saved) or the learned model (the trained network, its
        noise schedule and the scoring noise drawn at fit time).
    network_ : torch.nn.Module or None
        The trained denoiser (or time classifier for ``denoiser="mlp",
        scoring="time"``); ``None`` for the exact model.
    device_ : torch.device
        The device in use.
    history_ : dict
        Training record: per-epoch ``loss`` and ``val_loss``, ``n_steps``,
        ``best_epoch``, ``stopped_early``, ``fit_seconds`` (empty for the exact
        model). A network fitted on a Dask collection adds what it streamed:
        ``streamed_samples``, ``streamed_blocks``, ``block_loads``,
        ``most_blocks_held``.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_loss_curve_ : list of float
        Held-out loss of each epoch (empty without early stopping).
    n_iter_ : int
        Number of epochs run (1 for the exact model: the rows are stored in one
        pass).

    See Also
    --------
    pyod.models.iforest.IForest : a fast classical baseline.

    References
    ----------
    .. [1] J. Ho, A. Jain, P. Abbeel. "Denoising Diffusion Probabilistic Models",
       NeurIPS 2020.
    .. [2] J. Song, C. Meng, S. Ermon. "Denoising Diffusion Implicit Models",
       ICLR 2021.
    .. [3] V. Livernoche, V. Jain, Y. Hezaveh, S. Ravanbakhsh. "On Diffusion
       Modeling for Anomaly Detection" (DTE), ICLR 2024.
    .. [4] Y. Ouyang et al. "MissDiff: Training Diffusion Models on Tabular Data
       with Missing Values", 2023.
    .. [5] J. Liu et al. "Anomaly Detection and Generation with Diffusion Models:
       A Survey", 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad import TabDiffusionDetector
    >>> rng = np.random.default_rng(0)
    >>> X_train = rng.normal(size=(500, 4))
    >>> X_test = np.vstack([rng.normal(size=(5, 4)), rng.normal(6, 1, size=(5, 4))])
    >>> det = TabDiffusionDetector(random_state=0).fit(X_train)
    >>> det.predict(X_test)
    array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    """

    _parameter_constraints: dict = {
        **BaseDiffusionDetector._parameter_constraints,
        "denoiser": [StrOptions({"exact", "mlp"})],
        "scoring": [StrOptions(set(TABLE_SCORINGS) | {"nonparametric"},
                               deprecated={"nonparametric"})],
        "novelty": ["boolean"],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_bins": [Interval(numbers.Integral, 2, None, closed="left")],
        "widths": [tuple, list],
        "hidden_dims": [tuple, list, StrOptions({UNSET})],
    }
    _renamed = {**BaseDiffusionDetector._renamed, "hidden_dims": "widths"}

    def __init__(
        self,
        *,
        denoiser="exact",
        scoring="time",
        novelty=True,
        n_neighbors="auto",
        widths=(128, 128),
        n_bins=7,
        n_timesteps=1000,
        beta_schedule="linear",
        n_scoring_timesteps=8,
        n_inference_steps=5,
        max_samples=10_000,
        search="exact",
        max_steps=1000,
        batch_size=256,
        learning_rate=1e-3,
        weight_decay=1e-4,
        ema_decay=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=20,
        mixed_precision=True,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        max_iter=UNSET,
        hidden_dims=UNSET,
    ):
        self.denoiser = denoiser
        self.scoring = scoring
        self.novelty = novelty
        self.n_neighbors = n_neighbors
        self.widths = widths
        self.n_bins = n_bins
        self.n_timesteps = n_timesteps
        self.beta_schedule = beta_schedule
        self.n_scoring_timesteps = n_scoring_timesteps
        self.n_inference_steps = n_inference_steps
        self.max_samples = max_samples
        self.search = search
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.ema_decay = ema_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.mixed_precision = mixed_precision
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.max_iter = max_iter
        self.hidden_dims = hidden_dims

    @classmethod
    def _unit_test_params(cls):
        """Small, fast settings for the test-suite (river's convention)."""
        return {"widths": (16,), "max_steps": 6, "n_timesteps": 50, "n_scoring_timesteps": 3,
                "n_inference_steps": 2, "random_state": 0, "device": "cpu"}

    def _check_params(self):
        super()._check_params()
        _positive_ints(self._current("widths"), self._spelling("widths"))

    def _paradigm(self):
        """``(denoiser, scoring)`` the parameters ask for, 0.1's spellings resolved."""
        denoiser, scoring = self.denoiser, self.scoring
        if scoring == "nonparametric":
            warn_deprecated(type(self).__name__, "denoiser='exact', scoring='time'",
                            "scoring='nonparametric' is the exact model's diffusion time")
            return "exact", "time"
        if denoiser == "exact" and scoring != "time":
            warn_deprecated(type(self).__name__, f"denoiser='mlp', scoring={scoring!r}",
                            f"scoring={scoring!r} needs a trained denoiser (the exact model "
                            "has none); for this release it implies denoiser='mlp'")
            return "mlp", scoring
        return denoiser, scoring

    modality_class = TableModality

    def _make_modality(self):
        denoiser, scoring = self._paradigm()
        return TableModality(
            owner=type(self).__name__, denoiser=denoiser, scoring=scoring,
            widths=self._current("widths"), n_bins=self.n_bins, novelty=self.novelty,
            n_neighbors=self.n_neighbors, contamination=self.contamination,
            # the discrete columns' levels serve sample() only
            levels=denoiser != "exact" and PARADIGMS[scoring].generative)

    def sample(self, n_samples=1, *, random_state=None, sampler="ddpm", n_steps=None,
               missing=False):
        """Draw new rows from the trained denoiser, as the user's kind of table.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        random_state : int, RandomState instance or None, default=None
            Seeds the chain (and the blanks of ``missing``); the detector is not
            changed.
        sampler : {"ddpm", "ddim"}, default="ddpm"
            Ancestral DDPM (every step by default) or deterministic DDIM.
        n_steps : int or None, default=None
            Network evaluations per row (``None``: all ``n_timesteps`` of
            ``"ddpm"``, 50 of ``"ddim"``).
        missing : bool, default=False
            ``False`` returns complete rows. ``True`` blanks each entry (NaN)
            independently at its column's training missing rate
            (``encoder_.missing_rates_``); an integer or boolean column that
            gets blanks is returned as pandas would hold it (float or object).

        Returns
        -------
        rows : ndarray of shape (n_samples, n_features) or pandas.DataFrame
            A float array for a detector fitted on an array (float32 when that
            array was float32, else float64); for one fitted on
            a DataFrame, a frame with its columns, order and dtypes: numeric
            columns de-standardised (integer columns rounded), every
            categorical entry a category seen in fit. A numeric column whose
            training values repeat (at most half as many distinct values as
            entries) takes the nearest of them, never a value beyond them.

        Raises
        ------
        ValueError
            When the detector has no trained denoiser that can sample (the exact
            model, or the MLP's time classifier), naming the settings that
            have one; for a bad ``n_samples``, ``sampler`` or ``n_steps``.

        Examples
        --------
        >>> import numpy as np
        >>> from skdiffad import TabDiffusionDetector
        >>> X = np.random.default_rng(0).normal(size=(300, 3))
        >>> det = TabDiffusionDetector(denoiser="mlp", scoring="density", max_steps=200,
        ...                            random_state=0).fit(X)
        >>> det.sample(5, random_state=0, sampler="ddim").shape
        (5, 3)
        """
        if not isinstance(missing, (bool, np.bool_)):
            raise TypeError(f"missing must be True or False, got {missing!r}")
        n = _check_n_samples(n_samples)
        modality, model = self._fitted()
        seed = _seed_from(random_state)
        return self._as_fitted_dtype(modality.sample(
            model, n, seed=_seed_from(seed), sampler=sampler, n_steps=n_steps,
            missing=bool(missing), missing_seed=seed))
