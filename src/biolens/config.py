"""Typed, layered configuration: YAML file → CLI overrides → resolved config written into the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from biolens.errors import ConfigError


MAX_YAML_ALIASES = 20  # a config needs none; thousands of nested aliases are a "billion laughs" expansion


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python tags, ever) that also refuses alias bombs."""

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name); a config needs none")
        return super().compose_node(parent, index)


def safe_yaml(text: str) -> Any:
    """Parse YAML with the safe loader: plain data only, no Python tags, no alias bombs."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  _Loader is a SafeLoader


class _Strict(BaseModel):
    # no NaN or infinity in any float field (lr: .inf is a mistake, not a learning rate)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class QualityConfig(_Strict):
    """Sequence quality filter (guide 3.3 / 7.2). ``None`` thresholds take the alphabet's default."""

    min_len: int = Field(1, ge=0, description="drop sequences shorter than this")
    max_unknown_frac: float = Field(0.1, ge=0, le=1, description="drop sequences with more N (or X) than this")
    max_homopolymer: int | None = Field(None, ge=1, description="longest single-symbol run; default 20 for dna/rna, off for protein")
    min_complexity: float | None = Field(
        None, ge=0, le=1, description="normalized Shannon entropy of composition; default 0.3 for dna/rna, off for protein"
    )


class AugmentConfig(_Strict):
    """Train-time augmentation, applied on whole batches on the device."""

    reverse_complement: bool | None = Field(None, description="default: on for dna/rna unless the data set is strand-specific; never for protein")
    substitution_rate: float = Field(0.0, ge=0, le=0.5, description="per-base probability of a random substitution")
    shift: int = Field(0, ge=0, description="random shift of each sequence by up to this many bases (PAD fill)")


class ImageConfig(_Strict):
    """Image tasks: decoding, the decode-once cache, augmentation and normalization (guide 3.2 / 7.1)."""

    image_size: int | None = Field(None, ge=8, description="model input size; default: 28 for bundled sets, 224 otherwise")
    crop_ratio: float = Field(1.0, gt=0, le=1, description="eval: resize to image_size/crop_ratio, then center crop")
    channels: Literal["auto", 1, 3] = Field("auto", description="auto: 3 for transfer backbones, else the data's own")
    augment: Literal["medical", "natural", "none"] = "medical"
    normalize: Literal["auto", "imagenet", "data", "none"] = Field("auto", description="auto: imagenet for transfer backbones, else train statistics")
    mean: list[float] | None = None
    std: list[float] | None = None
    skip_bad: bool = Field(False, description="skip unreadable images (listed in filtered.tsv) instead of failing")
    cache: bool = Field(True, description="decode once into a memory-mapped cache reused by later runs")
    cache_dir: str | None = Field(None, description="default: $BIOLENS_CACHE/images or ~/.cache/biolens/images")
    path_col: str = Field("path", description="image path column of a CSV manifest")
    window_center: float | None = Field(None, description="DICOM window; default: the file's own, else min-max")
    window_width: float | None = Field(None, gt=0)
    max_pixels: int = Field(40_000_000, ge=1, description="largest image (width × height, from its header) that is "
                            "decoded; larger files are refused as unreadable (decompression bombs, huge scans)")
    resident: Literal["auto"] | bool = Field(
        "auto", description="keep each split's uint8 pixels whole on the device; auto: on CUDA when the split fits in "
        "half the free GPU memory (else pinned, non-blocking batches); on CPU true copies it into RAM")
    channels_last: Literal["auto"] | bool = Field("auto", description="channels_last memory format for model and batches; auto: on CUDA")


class IntervalConfig(_Strict):
    """Training windows cut from ``data.genome`` at BED/narrowPeak intervals (``data.path`` holds the BED files)."""

    window: int | None = Field(None, ge=2, description="window length centred on each interval (or its summit); default: every interval as it is")
    center: Literal["auto", "summit", "middle"] = Field("auto", description="window centre; auto: the narrowPeak summit where the file has one, else the middle")
    label_column: int | None = Field(None, ge=4, description="class labels from this BED column (1-based, e.g. 4 = name); default: one class per file")
    negatives: Literal["none", "gc-matched", "shuffled", "flanks"] = Field(
        "none", description="negatives for positives-only intervals: genome windows with the positives' GC content, "
        "dinucleotide-shuffled copies of the positives, or the regions flanking them (seeded by data.split_seed)")
    negative_ratio: float = Field(1.0, gt=0, le=100, description="negatives per positive")
    flank_distance: int = Field(0, ge=0, description="flanks: gap in bases between an interval and its flank windows")
    val_chroms: list[str] = Field(default_factory=list, description="contigs whose windows form the val split (else a seeded split of the rest)")
    test_chroms: list[str] = Field(default_factory=list, description="contigs whose windows form the test split (else a seeded split of the rest)")
    blacklist: str | None = Field(None, description="BED of regions to leave out (e.g. the ENCODE blacklist): no window overlaps one")
    chrom_aliases: dict[str, str] = Field(default_factory=dict, description="contig names of BED/VCF files → the genome's, e.g. {Chromosome: NC_000913.3}")
    ignore_strand: bool = Field(False, description="do not reverse-complement minus-strand intervals")


class SplitConfig(_Strict):
    """How records are grouped before the seeded split, and an optional fixed assignment (cross-validation folds)."""

    group_by: Literal["duplicates", "similarity"] = Field(
        "duplicates", description="duplicates: identical (and reverse-complement) sequences or identical images stay "
        "in one split; similarity: also sequences at or above data.split.max_identity k-mer identity (MinHash)")
    max_identity: float = Field(0.8, gt=0, le=1, description="group_by=similarity: estimated identity (k-mer Jaccard "
                                "on k-mers of length data.split.kmer) at or above which two sequences share a group")
    kmer: int | None = Field(None, ge=2, le=31, description="group_by=similarity: k-mer length of the MinHash "
                             "sketches; default 8 for DNA/RNA, 4 for protein (long enough that unrelated sequences "
                             "share almost no k-mers)")
    assignment: str | None = Field(None, description="TSV (row, id, split) fixing every record's split; records it "
                                   "does not list are left out (written by biolens cv for each fold)")


class DataConfig(_Strict):
    path: str | list[str] = Field(..., description="builtin:NAME, a FASTA/CSV/TSV file (.gz ok), or LABEL=FASTA per class; "
                                  "with data.genome: BED/narrowPeak intervals on it (LABEL=BED per class)")
    genome: str | None = Field(None, description="reference FASTA (.gz ok: gzip or bgzip) the intervals of data.path lie on; indexed in $BIOLENS_CACHE/genomes")
    intervals: IntervalConfig = IntervalConfig()
    task: Literal["auto", "sequence", "image"] = Field("auto", description="auto: image for image folders, manifests and bundled image sets")
    val: str | None = None
    test: str | None = None
    labels: str | None = Field(None, description="CSV mapping FASTA ids to labels (columns id_col, label_col)")
    seq_col: str = "sequence"
    label_col: str = "label"
    target: Literal["auto", "classification", "regression", "multilabel"] = Field(
        "auto", description="what the labels are; auto: detected from the values (one line in the log says why): "
        "numbers with many distinct values → regression, label sets (A|B) or several 0/1 columns → multilabel")
    target_cols: list[str] = Field(default_factory=list, description="target columns of a CSV/TSV or manifest, or "
                                   "key=value keys of FASTA headers (default: data.label_col; several: a multi-task "
                                   "regression or one 0/1 column per label)")
    label_sep: str = Field("|", min_length=1, description="separator of label sets in one column (multilabel: A|B)")
    id_col: str = "id"
    split_col: str = "split"
    group_col: str | None = Field(None, description="column (CSV/TSV/manifest) or FASTA header key (group=) with a "
                                  "patient, subject or family id; every group stays in one split and one fold")
    split: SplitConfig = SplitConfig()
    alphabet: Literal["auto", "dna", "rna", "protein"] = "auto"
    max_len: int | None = Field(None, ge=1, description="truncate longer sequences; default: longest training sequence")
    val_frac: float = Field(0.1, gt=0, lt=0.5)
    test_frac: float = Field(0.1, gt=0, lt=0.5)
    split_seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed of the data's random parts: the "
                                   "seeded split, a val or test carve-out and generated negatives; default: "
                                   "train.seed (cv fixes it, so that its folds train with their own seeds on one "
                                   "data set)")
    dedup: bool = Field(False, description="remove val/test sequences duplicated (or reverse-complemented) in earlier splits")
    positive_class: str | None = None
    gc_input: bool | None = Field(None, description="feed GC content to the model; default: when the model declares it")
    store: Literal["auto", "memory", "mmap"] = Field(
        "auto", description="sequences: memory = encode into RAM; mmap = stream the file once into a memory-mapped "
        "on-disk store and read batches from it (bounded memory); auto = mmap when the data would not fit in RAM")
    store_dir: str | None = Field(None, description="mmap store location; default: $BIOLENS_CACHE/sequences or ~/.cache/biolens/sequences")
    quality: QualityConfig = QualityConfig()
    augment: AugmentConfig = AugmentConfig()
    image: ImageConfig = ImageConfig()

    @field_validator("path")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if not v:
            raise ValueError("give a file, builtin:NAME or LABEL=FILE entries")
        return v[0] if isinstance(v, list) and len(v) == 1 else v


class ModelConfig(_Strict):
    name: str | None = Field(None, description="registered architecture; default: the registry's default for the task")
    params: dict[str, Any] = Field(default_factory=dict)
    # Fine-tuning (image models): where the starting weights come from and what trains when (guide 4.5).
    pretrained: Literal["imagenet"] | None = Field(None, description="torchvision ImageNet weights (needs a download once)")
    weights: str | None = Field(None, description="starting weights: a state dict (.safetensors/.pt) or a biolens run folder")
    freeze_until: str | None = Field(None, description="freeze every backbone stage before this one, e.g. layer3; 'all' = head only")
    head_epochs: int = Field(0, ge=0, description="train only the head for this many epochs, then unfreeze")
    backbone_lr_scale: float | None = Field(None, gt=0, description="backbone LR = train.lr × this; default 0.1 for image models with starting weights, else 1")
    # Knowledge distillation (guide 7.6): a trained run whose soft targets the model learns from.
    teacher: str | None = Field(None, description="teacher run folder (or ensemble bundle): train on its soft targets, see train.distill_*")


class TrainConfig(_Strict):
    preset: Literal["auto", "none"] = Field(
        "auto", description="auto: model size, epochs, schedule, batch size and class weights chosen from the data "
        "size, input size, class balance and device for every field left unset (doctor/advise.py), written into the "
        "run's config.yaml; none: the plain defaults below")
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float | Literal["auto"] = Field(1e-3, description="learning rate; auto: the LR range test's suggestion on the "
                                        "training data (written into config.yaml)")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    early_stopping_patience: int | None = Field(5, ge=1)
    plateau_patience: int = Field(2, ge=0)
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    monitor: str = Field("val_loss", pattern=r"^(train|val)_\w+$", description="logged value for plateau, early stopping, best checkpoint")
    monitor_mode: Literal["auto", "min", "max"] = Field("auto", description="auto: min for *loss, else max")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="random seed (0 … 2^63 − 1)")
    device: str = "auto"
    deterministic: bool = False
    # Training toolkit (guide 5, 6): optimizer, schedule, loss, imbalance, precision, logging, checkpoints.
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD (Nesterov) momentum")
    lr_mult: dict[str, float] = Field(default_factory=dict, description="LR multiplier per parameter-name prefix, e.g. {head: 10}")
    schedule: Literal["plateau", "step", "cosine", "warmup_cosine", "onecycle", "none"] = "plateau"
    step_size: int = Field(10, ge=1, description="step schedule: epochs between LR drops")
    step_gamma: float = Field(0.1, gt=0, lt=1, description="step schedule: LR factor per drop")
    warmup_epochs: float = Field(1.0, ge=0, description="warmup_cosine: linear warm-up length")
    min_lr: float = Field(0.0, ge=0, description="cosine schedules: final LR")
    loss: Literal["ce", "focal", "bce", "mse", "huber", "poisson"] = Field(
        "ce", description="classification: ce, focal, bce (binary); regression: mse, huber, poisson (counts) — ce "
        "means mse there; multilabel: bce per label (ce means bce)")
    huber_delta: float = Field(1.0, gt=0, description="huber loss: delta, in standard deviations of the target")
    standardize_targets: bool = Field(True, description="regression: train on (y − mean) / std of the train split "
                                      "(predictions come back in the original units)")
    at_least_one_label: bool | None = Field(None, description="multi-label: where no label passes its threshold, "
                                            "assign the most probable one; None (auto): on when every fully observed "
                                            "train sample carries a label")
    label_threshold: float | Literal["auto"] = Field(
        "auto", description="multi-label: the threshold every label's probability is decided at; auto: with "
        "at_least_one_label, the one of 0.50, 0.55, …, 0.90 with the best val subset accuracy (0.5 when val has "
        "fewer than 200 fully labelled samples), else 0.5. evaluate --optimize f1 replaces it per label")
    focal_gamma: float = Field(2.0, ge=0)
    focal_alpha: float | list[float] | None = Field(None, description="focal: scalar or one per class; default: class_weights")
    class_weights: Literal["none", "inverse", "effective"] = Field("none", description="loss weights from train class counts")
    effective_beta: float = Field(0.999, gt=0, lt=1, description="effective-number class weights: beta")
    sampler: Literal["shuffle", "weighted"] = Field("shuffle", description="weighted: draw classes equally often (with replacement)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto: bf16 autocast for image models on CUDA, else fp32")
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step (effective batch = batch_size × this)")
    compile: bool = Field(False, description="torch.compile the model")
    checkpoint_every: int | None = Field(None, ge=1, description="also keep checkpoints/epoch_NNN.pt every N epochs")
    tensorboard: bool = Field(False, description="write TensorBoard events to RUN/tensorboard (needs the tensorboard package)")
    tensorboard_histograms: bool = Field(False, description="train.tensorboard: also weight and gradient histograms every epoch")
    mlflow: str | None = Field(None, description="log to MLflow: 'local' (a store in RUN/mlflow) or a tracking URI such as http://HOST:5000 (needs mlflow)")
    mlflow_experiment: str = Field("biolens", min_length=1, description="train.mlflow: the MLflow experiment name")
    distill_temperature: float = Field(4.0, gt=0, le=100, description="model.teacher: softmax temperature T of the soft targets")
    distill_alpha: float = Field(0.5, ge=0, le=1, description="model.teacher: loss = α·T²·KL(teacher ‖ student at T) + (1 − α)·hard-label loss")
    ema: float | None = Field(None, gt=0, lt=1, description="keep an exponential moving average of the weights with "
                              "this decay (e.g. 0.999, warmed up over the first steps); validation, checkpoints and "
                              "the saved model use the averaged weights")
    tta: bool = Field(False, description="test-time augmentation: predictions average the input and its reverse "
                      "complement (DNA/RNA trained with reverse-complement augmentation) or its mirror image (images "
                      "trained with flips); recorded in the contract, applied by predict, evaluate, serve and export")
    evaluate_test: bool = Field(True, description="score the test split after training (metrics.json, predictions.csv);"
                                " tune trials turn it off so that model selection never sees the test split")

    @field_validator("label_threshold")
    @classmethod
    def _label_threshold_in_range(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0 < v < 1:
            raise ValueError("must be between 0 and 1, exclusive (or auto)")
        return v

    @field_validator("lr")
    @classmethod
    def _positive_lr(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and v <= 0:
            raise ValueError("must be greater than 0 (or auto)")
        return v


class RunConfig(_Strict):
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    out: str | None = None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @property
    def data_seed(self) -> int:
        """The seed of the split and generated negatives: ``data.split_seed``, else ``train.seed``."""
        return self.train.seed if self.data.split_seed is None else self.data.split_seed


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"cannot set {key!r}: {p!r} is not a section")
    d[parts[-1]] = value


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["train.lr=3e-4", "model.params.channels=64"]`` → nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.lr=3e-4")
        try:
            value = safe_yaml(raw)
        except yaml.YAMLError as e:  # includes tags such as !!python/object, which safe_load never constructs
            problem = str(getattr(e, "problem", None) or e).splitlines()[0]
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem}); quote it or fix it, "
                              "e.g. --set train.lr=3e-4") from None
        _set_dotted(out, key.strip(), value)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML config (optional), apply nested overrides and validate.

    Raises ConfigError naming the file and field on any problem.
    """
    raw: dict[str, Any] = {}
    where = "configuration"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}; check the path")
        try:
            raw = safe_yaml(p.read_bytes().decode("utf-8-sig")) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text (byte at offset {e.start}); save the config as UTF-8") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = str(getattr(e, "problem", None) or e).splitlines()[0]
            raise ConfigError(f"{p}{line}: invalid YAML ({problem}); fix the syntax (biolens reads plain YAML, "
                              "never Python tags)") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: expected a mapping with sections data/model/train at the top level")
    raw = _merge(raw, overrides or {})
    return validate_config(raw, where)


def validate_config(raw: dict[str, Any], where: str = "configuration") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if err["type"] == "missing" and field == "data":
            raise ConfigError(f"{where}: no data given; set data.path=FILE or builtin:NAME, or give a data: section") from None
        got = repr(err.get("input"))
        got = got if len(got) <= 80 else got[:77] + "..."
        raise ConfigError(f"{where}: field {field!r}: {err['msg']} (got {got})") from None


def as_config(config: RunConfig | dict | str | Path) -> RunConfig:
    """A validated RunConfig from a RunConfig, a nested dict or a YAML file path."""
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return validate_config(config)
    return load_config(config)
