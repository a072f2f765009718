"""Deep-Compression-style weight compression: prune, cluster, ternary/binary, then int8 PTQ.

Why each step: magnitude pruning (TF-MOT, polynomial sparsity schedule) makes most weights zero;
weight clustering (TF-MOT, per channel where the layer allows) leaves each channel with at most
``clusters`` distinct values, so after per-channel int8 quantization a layer can be stored as
k-bit indices into a small per-channel table (edgeq-rt's LUT-coded kernels); ternary/binary
weights (fine-tuned with a straight-through estimator, :mod:`edgeq.quantize.ste`) are the 2-bit /
1-bit extreme. Everything is fine-tuned towards the original model (distillation,
:mod:`edgeq.quantize.distill`), quantized to ordinary int8 — with ternary/binary conv filters
packed as int4, which TFLM runs too — and its accuracy measured.

This module is about training and the .tflite. How the result is stored in flash (LUT coding, the Huffman
bound) is ``edgeq.codegen.weight_coding``; ``edgeq compress`` puts the two together in
``edgeq.pipeline.run_compress``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError
from edgeq.quantize.distill import distillation_set, loss_for_targets

# --- the compression passes (tf-keras + TF-MOT) -------------------------------------------------


def _prunable(layer: Any, min_weights: int) -> bool:
    kind = type(layer).__name__
    if kind not in ("Conv2D", "Dense", "DepthwiseConv2D"):
        return False
    return int(np.prod(layer.get_weights()[0].shape)) >= min_weights


def not_pruned(model: Any, min_weights: int = 256) -> dict[str, str]:
    """Weight layers magnitude pruning leaves dense, and why (reported, never silent)."""
    weighted = [lyr for lyr in model.layers
                if type(lyr).__name__ in ("Conv2D", "Dense", "DepthwiseConv2D")]
    out: dict[str, str] = {}
    for k, lyr in enumerate(weighted):
        if type(lyr).__name__ == "DepthwiseConv2D":
            out[lyr.name] = ("depthwise: TF-MOT 0.8 registers no prunable weights for "
                             "DepthwiseConv2D, and a 3x3 filter at 75 % sparsity keeps 2 taps")
        elif k == 0:
            out[lyr.name] = "first layer: few weights that carry most of the accuracy"
        elif not _prunable(lyr, min_weights):
            out[lyr.name] = f"fewer than {min_weights} weights"
    return out


def _compile(model: Any, keras: Any, lr: float, y: np.ndarray) -> None:
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss_for_targets(y))


def prune(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    sparsity: float = 0.75,
    epochs: int = 4,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    min_weights: int = 256,
    constant: bool = False,
) -> Any:
    """Magnitude pruning to ``sparsity`` with a polynomial schedule, fine-tuned; wrappers stripped.

    Layers in :func:`not_pruned` stay dense (the first layer, depthwise layers, layers with
    fewer than ``min_weights`` kernel elements). ``constant`` holds the final sparsity from the
    first step (continuing to fine-tune an already pruned model without regrowing weights).
    """
    if not 0.0 <= sparsity < 1.0:
        raise QuantizeError(f"pruning sparsity {sparsity} must be in [0, 1), e.g. 0.75")
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    import tensorflow_model_optimization as tfmot

    if sparsity == 0.0:
        return model
    steps = max(1, math.ceil(len(x) / batch_size)) * max(1, epochs)
    if constant:
        schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    else:
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
            end_step=max(1, int(steps * 0.7)), frequency=max(1, steps // 20),
        )
    dense = not_pruned(model, min_weights)

    def wrap(layer: Any) -> Any:
        if _prunable(layer, min_weights) and layer.name not in dense:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    wrapped.set_weights(_weights_for(wrapped, model))
    _compile(wrapped, keras, learning_rate, y)
    wrapped.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def cluster(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    clusters: int = 16,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 3e-4,
    preserve_sparsity: bool = True,
    per_channel: bool = True,
    min_weights: int = 64,
) -> Any:
    """Weight clustering seeded by 1-D k-means, fine-tuned, stripped.

    ``preserve_sparsity`` keeps the zeros of layers that were pruned (and only those: a layer
    with fewer than :data:`PRUNED_FRACTION` zeros is clustered without a forced zero centroid).
    """
    if clusters < 2 or clusters > 256:
        raise QuantizeError(f"cluster count {clusters} must be between 2 and 256, e.g. 16")
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    import tensorflow_model_optimization as tfmot

    ck = tfmot.clustering.keras
    # TF-MOT's seeds are replaced by k-means below (:func:`_seed_centroids`); linear seeding is
    # only asked for because k-means++ fails to build on channels with few weights of one sign
    kwargs = {"number_of_clusters": clusters,
              "cluster_centroids_init": ck.CentroidInitialization.LINEAR}

    def wrap(layer: Any) -> Any:
        if not _prunable(layer, min_weights):
            return layer
        sparse = preserve_sparsity and zero_fraction(layer) >= PRUNED_FRACTION
        # TF-MOT 0.8's per-channel seeding breaks on pruned channels (mismatched centroid
        # counts), so sparsity-preserving clustering is per tensor; unpruned Conv2D layers (the
        # first layer above all: few weights, most of the accuracy) get centroids per channel
        use_pc = per_channel and not sparse and type(layer).__name__ == "Conv2D"
        extra = {"cluster_per_channel": True} if use_pc else {}
        return ck.cluster_weights(layer, preserve_sparsity=sparse, **kwargs, **extra)

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    wrapped.set_weights(_weights_for(wrapped, model))
    _seed_centroids(wrapped)
    _compile(wrapped, keras, learning_rate, y)
    wrapped.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return ck.strip_clustering(wrapped)


# a layer with at least this fraction of exact zeros counts as pruned (clustering keeps them)
PRUNED_FRACTION = 0.1


def zero_fraction(layer: Any) -> float:
    """Fraction of exact zeros in a layer's kernel."""
    kernel = np.asarray(layer.get_weights()[0])
    return float(np.mean(kernel == 0))


def kmeans_1d(values: np.ndarray, k: int, *, keep_zero: bool = False,
              iterations: int = 50) -> np.ndarray:
    """``k`` centroids of 1-D ``values`` by Lloyd's algorithm (sorted).

    Seeded twice, linearly over [min, max] (Deep Compression's choice: keeps the large weights)
    and at quantiles, keeping the lower squared error. With ``keep_zero`` one centroid is
    exactly 0 and only the nonzero values move the others (the pruned zeros stay where they
    are). Why not TF-MOT's seeds: its sparsity-aware linear seeding puts an interval's single
    centroid on the interval's extreme weight and a second one next to zero, so at 4 clusters
    most weights snap to 0 and stay masked (digits, 50 % pruned: 22 %).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if keep_zero:
        v = v[v != 0]
    free = k - 1 if keep_zero else k
    if free <= 0 or v.size == 0:
        return np.zeros(k, dtype=np.float32)
    fixed = np.zeros(1) if keep_zero else np.zeros(0)

    def lloyd(c: np.ndarray) -> tuple[np.ndarray, float]:
        for _ in range(iterations):
            nearest = np.argmin(np.abs(v[:, None] - np.concatenate([c, fixed])[None, :]), axis=1)
            new = np.array([v[nearest == j].mean() if np.any(nearest == j) else c[j]
                            for j in range(free)])
            if np.allclose(new, c):
                break
            c = new
        err = np.min((v[:, None] - np.concatenate([c, fixed])[None, :]) ** 2, axis=1).sum()
        return c, float(err)

    seeds = (np.linspace(v.min(), v.max(), free), np.quantile(v, (np.arange(free) + 0.5) / free))
    best = min((lloyd(s) for s in seeds), key=lambda r: r[1])[0]
    return np.sort(np.concatenate([best, fixed])).astype(np.float32)


def _seed_centroids(wrapped: Any) -> None:
    """Replace TF-MOT's centroid seeds with k-means ones; the zero mask is the pruned zeros only."""
    import tensorflow as tf

    for layer in wrapped.layers:
        centroids = getattr(layer, "cluster_centroids", None)
        if not centroids:
            continue
        sparse = bool(getattr(layer, "preserve_sparsity", False))
        for name, var in centroids.items():
            w = np.asarray(layer.original_clusterable_weights[name].numpy())
            k = int(var.shape[-1])
            if len(var.shape) == 1:
                seeds = kmeans_1d(w, k, keep_zero=sparse)
            else:  # per channel (channels last): one row of centroids per output channel
                flat = w.reshape(-1, w.shape[-1])
                seeds = np.stack([kmeans_1d(flat[:, ch], k, keep_zero=sparse)
                                  for ch in range(flat.shape[1])])
            var.assign(seeds)
            algo = layer.clustering_algorithms[name]
            layer.pulling_indices[name].assign(algo.get_pulling_indices(tf.constant(w)))
            if sparse:
                layer.sparsity_masks[name] = tf.constant((w != 0).astype(np.float32))
                layer.zero_idx[name] = tf.argmin(tf.abs(var), axis=-1)


def _weights_for(wrapped: Any, original: Any) -> list[np.ndarray]:
    """Weights of ``original`` laid out for ``wrapped`` (wrappers add their own variables)."""
    by_name = {layer.name: layer for layer in original.layers}
    for layer in wrapped.layers:
        inner = getattr(layer, "layer", None)
        src = by_name.get(inner.name if inner is not None else layer.name)
        if src is None:
            continue
        target = inner if inner is not None else layer
        target.set_weights(src.get_weights())
    return wrapped.get_weights()


def ternarize(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    grid: str = "ternary",
    epochs: int = 5,
    learning_rate: float = 1e-3,
    min_weights: int = 0,
    keep_ends: bool = True,
) -> Any:
    """Ternary ({-a,0,+a}) or binary ({-a,+a}) weights per output channel via STE fine-tuning.

    ``keep_ends`` leaves the first and last weight layers int8, as TWN/XNOR-Net do: they hold
    few weights and carry most of the accuracy.
    """
    from edgeq.quantize.mixed import clone_keras
    from edgeq.quantize.ste import finetune_on_grid

    if grid not in ("ternary", "binary"):
        raise QuantizeError(f"grid '{grid}' is not ternary or binary")
    twin = clone_keras(model)
    names = [layer.name for layer in twin.layers if _prunable(layer, min_weights)]
    if keep_ends and len(names) > 2:
        names = names[1:-1]
    grids = dict.fromkeys(names, grid)
    if not grids:
        raise QuantizeError("the model has no Conv2D/DepthwiseConv2D/Dense layer to ternarize")
    return finetune_on_grid(twin, grids, x, y, epochs=epochs, learning_rate=learning_rate,
                            loss=loss_for_targets(y))


# --- a .tflite that is really smaller ----------------------------------------------------------

# ops whose int4 filters TFLM runs (its wheel refuses int4 FULLY_CONNECTED filters)
INT4_FILE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _channel_rows(w: np.ndarray, opcode: str) -> np.ndarray:
    """Filter values one row per output channel (CONV_2D OHWI: axis 0; depthwise 1HWC: axis 3)."""
    axis = 0 if opcode == "CONV_2D" else w.ndim - 1
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)


def int4_exact_layers(float_model: bytes) -> list[str]:
    """Conv/depthwise ops whose float filters sit exactly on a symmetric int4 grid per channel.

    Ternary ({-a, 0, +a}) and binary ({-a, +a}) channels do (as 7 steps of a/7), also after
    BatchNormalization is folded in (one factor per output channel); such a layer stored as int4
    is the same function in half the bytes.
    """
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(float_model)
    out = []
    for op in m.operators:
        f = m.tensors[op.inputs[1]] if op.opcode in INT4_FILE_OPS else None
        if f is None or f.data is None or f.dtype != "float32":
            continue
        rows = _channel_rows(np.asarray(f.data, dtype=np.float64), op.opcode)
        peak = np.abs(rows).max(axis=1, keepdims=True)
        steps = np.divide(7.0 * rows, peak, out=np.zeros_like(rows), where=peak > 0)
        if np.all(np.abs(steps - np.round(steps)) < 1e-4):
            out.append(m.tensors[op.outputs[0]].name)
    return out


def int4_where_exact(keras_model: Any, calibration: np.ndarray) -> tuple[bytes, list[str]] | None:
    """The model with every int4-exact conv/depthwise filter stored as packed int4 and those
    layers' names, or None.

    Each int4 filter is checked against the float one it came from (dequantized, equal within
    1e-5 of the channel's peak): a quantizer that picked another scale would change the function
    and the int8 file is kept instead.
    """
    from edgeq.quantize.sensitivity import (
        VARIANT_PRECISION,
        float_tflite,
        quantize_with_plan,
        weight_layers,
    )
    from edgeq.tflite import read_tflite_bytes

    fmodel = float_tflite(keras_model)
    names = int4_exact_layers(fmodel)
    if not names:
        return None
    tfl = quantize_with_plan(fmodel, dict.fromkeys(names, VARIANT_PRECISION["w4"]), calibration)
    fm, qm = read_tflite_bytes(fmodel), read_tflite_bytes(tfl)
    floats = {fm.tensors[op.outputs[0]].name: (op.opcode, fm.tensors[op.inputs[1]].data)
              for op in fm.operators if op.opcode in INT4_FILE_OPS}
    checked = 0
    for op in qm.operators:
        f = qm.tensors[op.inputs[1]] if op.opcode in INT4_FILE_OPS else None
        if f is None or f.dtype != "int4" or f.quant is None:
            continue
        opcode, ref = floats[qm.tensors[op.outputs[0]].name]
        scale = np.asarray(f.quant.scale, dtype=np.float64)[:, None]
        rows = _channel_rows(np.asarray(f.data, dtype=np.float64), opcode) * scale
        want = _channel_rows(np.asarray(ref, dtype=np.float64), opcode)
        tol = 1e-5 * np.abs(want).max(axis=1, keepdims=True)
        if rows.shape != want.shape or np.any(np.abs(rows - want) > tol):
            return None
        checked += 1
    if checked != len(names):
        return None
    layers = {layer.name: layer.short_name for layer in weight_layers(fmodel, keras_model)}
    return tfl, [layers.get(n, n) for n in names]


# --- the whole pipeline -------------------------------------------------------------------------


@dataclass
class CompressResult:
    model: bytes  # int8 .tflite
    float_accuracy: float  # the compressed float model
    int8_accuracy: float  # measured on LiteRT reference kernels
    steps: list[str]
    keras_model: Any = None
    epochs_used: int = 0  # fine-tuning epochs in total, recovery included
    not_pruned: dict[str, str] = field(default_factory=dict)
    validation_drop_pt: float | None = None  # float - int8 on the held-aside training tenth
    seed: int = 0  # of the fine-tuning: with the same data, the same bytes
    int4_layers: list[str] = field(default_factory=list)  # stored as packed int4 in the file

    def summary(self) -> dict[str, Any]:
        """JSON vocabulary: accuracies as fractions, differences in percentage points (``_pt``)."""
        return {"steps": self.steps, "epochs_used": self.epochs_used, "seed": self.seed,
                "int4_layers": self.int4_layers,
                "validation_drop_pt": self.validation_drop_pt, "not_pruned": self.not_pruned,
                "float_accuracy": self.float_accuracy / 100.0,
                "int8_accuracy": self.int8_accuracy / 100.0,
                "tflite_bytes": len(self.model)}


def _has_batchnorm(model: Any) -> bool:
    return any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    probs = model.predict(x, verbose=0, batch_size=256)
    return 100.0 * float(np.mean(np.argmax(probs, axis=1) == y))


def int8_model(keras_model: Any, calibration: np.ndarray, *, per_channel: bool = True) -> bytes:
    """Full-integer int8 with int8 I/O through the project's PTQ converter."""
    from edgeq.data.prepare import RepresentativeDataset
    from edgeq.quantize.ptq import convert_ptq

    return convert_ptq(keras_model, RepresentativeDataset(calibration), mode="int8",
                       io_dtype="int8", per_channel=per_channel)


def compress(
    keras_model: Any,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    sparsity: float = 0.75,
    clusters: int | None = 16,
    grid: str | None = None,
    epochs: int = 4,
    calibration_samples: int = 200,
    per_channel: bool | None = None,
    max_drop_pt: float | None = 1.0,
    max_epochs: int = 16,
    seed: int = 0,
    distill: bool = True,
    blends: int = 1,
    int4_file: bool = True,
) -> CompressResult:
    """Prune -> cluster (or ternary/binary) -> int8 PTQ; accuracy measured on the int8 model.

    ``train``/``test`` are (x, y) already shaped and normalized for the model. ``per_channel``
    int8 scales default to on, except after clustering: clusters are shared by a whole tensor,
    and one scale per tensor keeps the int8 values shared too, so edgeq-rt stores one LUT table
    per layer instead of one per output channel (not when BatchNormalization is folded in).
    ``distill`` fine-tunes towards ``keras_model``'s probabilities instead of the bare labels,
    on the training split plus ``blends`` blended copies of it (:mod:`edgeq.quantize.distill`).
    ``int4_file`` stores conv/depthwise filters that sit exactly on an int4 grid (ternary,
    binary) as packed int4 (:func:`int4_where_exact`), so the file itself is smaller.
    """
    from edgeq.quantize.mixed import clone_keras
    from edgeq.quantize.sensitivity import clearly_better, model_probabilities

    x, y = train
    xt, yt = test
    if len(x) == 0 or len(xt) == 0:
        raise QuantizeError("compression needs training and test samples; give a dataset")
    if blends < 0:
        raise QuantizeError(f"blended copies {blends} must be 0 or more, e.g. 1")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    # the stop rule looks at a held-aside tenth of the training split, never at the test split
    n_val = max(1, len(x) // 10) if max_drop_pt is not None else 0
    xv, yv = x[order[:n_val]], y[order[:n_val]]
    x, y = x[order[n_val:]], y[order[n_val:]]
    calib = x[:calibration_samples]
    if per_channel is None:
        # BatchNormalization folds a per-channel factor into the clustered kernel, so the
        # clusters are per channel anyway and one scale per tensor would only lose precision
        per_channel = grid is not None or not clusters or _has_batchnorm(keras_model)
    from edgeq.tfenv import import_tf_keras

    # TF-MOT fine-tuning shuffles and drops out through TF's global generators: seed them, so
    # one run is the run (unseeded, four runs of the defaults spread 0.6 pt on one model)
    import_tf_keras().utils.set_random_seed(seed)
    model = clone_keras(keras_model)
    if distill:
        x, y = distillation_set(keras_model, x, y, seed=seed, blends=blends)
    copies = f"{blends} blended cop{'y' if blends == 1 else 'ies'}"
    steps = [f"distilled from the float model (training split + {copies})"] if distill else []
    skipped = not_pruned(model) if sparsity > 0 else {}
    if sparsity > 0:
        model = prune(model, x, y, sparsity=sparsity, epochs=epochs)
        steps.append(f"prune {sparsity:.2f}")
    used = epochs if sparsity > 0 else 0

    def last_stage(m: Any, n: int) -> Any:
        if grid is not None:
            return ternarize(m, x, y, grid=grid, epochs=n)
        if clusters:
            return cluster(m, x, y, clusters=clusters, epochs=n, preserve_sparsity=sparsity > 0)
        return prune(m, x, y, sparsity=sparsity, epochs=n, constant=True)

    if grid is not None or clusters:
        n0 = epochs if grid is not None else max(1, epochs - 1)
        model = last_stage(model, n0)
        used += n0
        steps.append(grid or f"cluster {clusters}")
    tfl = int8_model(model, calib, per_channel=per_channel)
    planned = used
    val_drop = None
    if max_drop_pt is not None and n_val:
        ref = keras_accuracy(keras_model, xv, yv)

        def val_hits(t: bytes) -> np.ndarray:
            return np.argmax(model_probabilities(t, xv), axis=1) == yv

        def val_acc(t: bytes) -> float:
            return 100.0 * float(np.mean(val_hits(t)))

        extra = 2
        val_drop = ref - val_acc(tfl)
        best = (val_drop, model, tfl)
        # a round can make things worse: the best one on the held-aside data is kept
        while val_drop > max_drop_pt and used + extra <= max_epochs:
            model = last_stage(model, extra)
            used += extra
            tfl = int8_model(model, calib, per_channel=per_channel)
            val_drop = ref - val_acc(tfl)
            if val_drop < best[0]:
                best = (val_drop, model, tfl)
        val_drop, model, tfl = best
        if used > planned:
            steps.append(f"recovery fine-tune to {used} epochs")
    steps.append(f"int8 PTQ ({'per-channel' if per_channel else 'per-tensor'})")
    int4_layers: list[str] = []
    packed = int4_where_exact(model, calib) if int4_file else None
    if packed is not None:
        # the int4 file computes the same float function; its activation ranges come from
        # another quantizer, so it is taken unless the int8 file is clearly better held aside
        tfl4, names = packed
        hits4 = None if val_drop is None else val_hits(tfl4)
        if hits4 is None or not clearly_better(val_hits(tfl), hits4):
            tfl, int4_layers = tfl4, names
            val_drop = val_drop if hits4 is None else ref - 100.0 * float(np.mean(hits4))
            steps.append(f"int4 filters for {len(names)} layer(s) on an int4 grid")
    probs = model_probabilities(tfl, xt)
    acc = 100.0 * float(np.mean(np.argmax(probs, axis=1) == yt))
    return CompressResult(
        model=tfl,
        float_accuracy=keras_accuracy(model, xt, yt),
        int8_accuracy=acc,
        steps=steps,
        keras_model=model,
        epochs_used=used,
        not_pruned=skipped,
        validation_drop_pt=val_drop,
        seed=seed,
        int4_layers=int4_layers,
    )
