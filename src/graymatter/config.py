"""Study files: YAML -> a validated :class:`StudySpec`, with errors that point at key and line.

Relative paths in a study file are relative to the file's own folder, so a study folder can be
moved or shared as a whole.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

# key -> (expected type(s) description, required)
_TOP = {
    "name": "text", "participants": "file", "id_column": "text", "images": "pattern or list",
    "regions": "file", "mask": "file", "model": "text", "levels": "mapping", "center": "bool",
    "contrasts": "mapping", "inference": "mapping", "atlas": "mapping or file",
    "demographics": "mapping", "output": "folder", "dtype": "text", "type": "text",
    "preprocess": "mapping", "store": "folder",
}
_REQUIRED = ("participants", "model", "contrasts")
_INFERENCE = {"methods": "list", "n_perm": "int", "height_p": "number", "height_t": "number",
              "connectivity": "int", "tfce": "bool", "two_sided": "bool", "random_state": "int",
              "n_jobs": "int"}
_ATLAS = {"image": "file", "labels": "file"}
_DEMOGRAPHICS = {"group": "text", "group_order": "list", "variables": "list"}
_PREPROCESS = {"t1": "pattern or list", "bids": "folder", "resolution": "number",
               "fwhm": "number", "denoise": "bool", "n_jobs": "int", "threads_per_subject": "int",
               "random_state": "int", "syn_iterations": "list",
               "exclude_qc": "none, fail or warn"}


class StudyFileError(InputError):
    """A study file is malformed: the message names the file, the line and the key."""


@dataclass(frozen=True)
class StudySpec:
    """A validated study file.

    Attributes mirror the YAML keys; paths are absolute. ``lines`` maps key paths such as
    ``("contrasts", "HC > MDD")`` to their line in the file, for later error messages.
    """

    source: Path
    name: str
    participants: Path
    model: str
    contrasts: dict
    output: Path
    id_column: str | None = None
    images: str | list[str] | None = None
    regions: Path | None = None
    mask: Path | None = None
    levels: dict | None = None
    center: bool = True
    inference: dict = field(default_factory=dict)
    atlas: dict | None = None
    demographics: dict | None = None
    dtype: str = "float64"
    preprocess: dict | None = None
    store: Path | None = None
    lines: dict = field(default_factory=dict, repr=False)

    def where(self, *key) -> str:
        """``"study.yaml, line 12"`` for a key path (or the nearest parent that has a line)."""
        while key and key not in self.lines:
            key = key[:-1]
        line = self.lines.get(key)
        return f"{self.source.name}, line {line}" if line else self.source.name


def _line_map(node, path=(), lines=None) -> dict:
    import yaml

    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = path + (str(key_node.value),)
            lines[key] = key_node.start_mark.line + 1
            _line_map(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _line_map(item, path + (i,), lines)
    return lines


class _Checker:
    def __init__(self, source: Path, lines: dict):
        self.source, self.lines = source, lines

    def where(self, *key) -> str:
        while key and key not in self.lines:
            key = key[:-1]
        line = self.lines.get(key)
        return f"{self.source}, line {line}" if line else str(self.source)

    def fail(self, key: tuple, problem: str) -> StudyFileError:
        return StudyFileError(f"{self.where(*key)}: {problem}")

    def keys(self, mapping, allowed: Mapping[str, str], path: tuple) -> None:
        if not isinstance(mapping, Mapping):
            raise self.fail(path, f"'{'.'.join(map(str, path)) or 'the study file'}' must be a "
                                  f"mapping of keys to values; got {type(mapping).__name__}.")
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise self.fail(path + (key,), f"unknown key '{key}'.{hint} Valid keys here: "
                                               f"{', '.join(allowed)}.")

    def file(self, value, key: tuple, *, must_exist: bool = True) -> Path:
        if not isinstance(value, (str, os.PathLike)):
            raise self.fail(key, f"'{key[-1]}' must be a path; got {value!r}.")
        path = Path(value)
        path = path if path.is_absolute() else (self.source.parent / path)
        if must_exist and not path.exists():
            raise self.fail(key, f"'{key[-1]}' names {value}, which does not exist "
                                 f"(looked for {path}); relative paths are relative to the study "
                                 "file's folder.")
        return path

    def typed(self, value, kind: str, key: tuple):
        checks = {"text": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
                  "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                  "list": lambda v: isinstance(v, list),
                  "mapping": lambda v: isinstance(v, Mapping)}
        phrases = {"text": "text", "bool": "true or false", "int": "an integer",
                   "number": "a number", "list": "a list", "mapping": "a mapping"}
        if kind in checks and value is not None and not checks[kind](value):
            raise self.fail(key, f"'{key[-1]}' must be {phrases[kind]}; got {value!r}.")
        return value


def read_study_yaml(path: str | os.PathLike) -> tuple[Path, object, dict]:
    """Parse a study file: its absolute path, the YAML data and the line of every key path."""
    import yaml

    source = Path(path).resolve()
    if not source.is_file():
        raise StudyFileError(f"study file {path} does not exist.")
    text = source.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        lines = _line_map(yaml.compose(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise StudyFileError(f"{source}{where}: not valid YAML "
                             f"({getattr(err, 'problem', None) or err}).") from None
    return source, data, lines


def load_any_study(path: str | os.PathLike):
    """Load a study file of either type: ``type: longitudinal`` or cross-sectional (default).

    Returns
    -------
    StudySpec or LongitudinalSpec

    Examples
    --------
    >>> spec = load_any_study("ect.yaml")  # doctest: +SKIP
    """
    _, data, _ = read_study_yaml(path)
    if isinstance(data, Mapping) and data.get("type") == "longitudinal":
        return load_longitudinal_study(path)
    return load_study(path)


def load_study(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study file.

    Parameters
    ----------
    path : path
        The YAML study file.

    Returns
    -------
    StudySpec

    Raises
    ------
    StudyFileError
        With the file, line and key of the first problem: unknown keys (with the closest valid
        key), missing required keys, wrong types, files that do not exist.

    Examples
    --------
    >>> spec = load_study("study.yaml")  # doctest: +SKIP
    >>> spec.contrasts  # doctest: +SKIP
    {'HC > MDD': 'HC - MDD'}
    """
    source, data, lines = read_study_yaml(path)
    check = _Checker(source, lines)
    if isinstance(data, Mapping) and data.get("type", "cross-sectional") != "cross-sectional":
        if data.get("type") == "longitudinal":
            raise check.fail(("type",), "this is a longitudinal study file: load it with "
                                        "graymatter.config.load_longitudinal_study (`graymatter "
                                        "run` handles both types).")
        raise check.fail(("type",), f"'type' must be cross-sectional or longitudinal; got "
                                    f"{data.get('type')!r}.")
    check.keys(data if data is not None else {}, _TOP, ())
    data = dict(data or {})
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise StudyFileError(f"{source}: missing required key(s) {', '.join(missing)}.")
    if sum(k in data for k in ("images", "regions", "preprocess")) != 1:
        raise StudyFileError(f"{source}: give exactly one of 'images' (modulated gray-matter "
                             "maps), 'preprocess' (raw T1 images to preprocess first) or "
                             "'regions' (a subjects x regions table).")
    for key in ("name", "id_column", "model", "dtype"):
        check.typed(data.get(key), "text", (key,))
    check.typed(data.get("center", True), "bool", ("center",))
    for key in ("levels", "contrasts", "inference", "demographics"):
        check.typed(data.get(key), "mapping", (key,))
    inference = dict(data.get("inference") or {})
    check.keys(inference, _INFERENCE, ("inference",))
    for key, kind in _INFERENCE.items():
        check.typed(inference.get(key), kind, ("inference", key))
    for name, expr in data["contrasts"].items():
        if not (isinstance(expr, str) or (isinstance(expr, list)
                                          and all(isinstance(e, str) for e in expr))):
            raise check.fail(("contrasts", name), f"contrast '{name}' must be an expression or a "
                                                  f"list of expressions (F); got {expr!r}.")
    atlas = data.get("atlas")
    if isinstance(atlas, str):
        atlas = {"image": atlas}
    if atlas is not None:
        check.keys(atlas, _ATLAS, ("atlas",))
        atlas = {k: check.file(v, ("atlas", k)) for k, v in atlas.items()}
    demographics = data.get("demographics")
    if demographics is not None:
        check.keys(demographics, _DEMOGRAPHICS, ("demographics",))
        if "group" not in demographics or "variables" not in demographics:
            raise check.fail(("demographics",), "demographics needs 'group' and 'variables'.")
    images = data.get("images")
    if isinstance(images, str):
        images = str(check.file(images, ("images",), must_exist=False))
    elif isinstance(images, list):
        images = [str(check.file(p, ("images", i))) for i, p in enumerate(images)]
    elif images is not None:
        raise check.fail(("images",), "'images' must be a glob pattern or a list of files.")
    preprocess = _preprocess_block(check, data.get("preprocess"))
    store = data.get("store")
    if store is not None:
        check.typed(store, "text", ("store",))
        if "regions" in data:
            raise check.fail(("store",), "'store' streams voxel images through a zarr folder; "
                                         "a regions table fits in memory: remove 'store'.")
        store = check.file(store, ("store",), must_exist=False)
    output = data.get("output") or f"{source.stem}-results"
    return StudySpec(
        source=source,
        name=data.get("name") or source.stem,
        participants=check.file(data["participants"], ("participants",)),
        model=data["model"],
        contrasts=dict(data["contrasts"]),
        output=check.file(output, ("output",), must_exist=False),
        id_column=data.get("id_column"),
        images=images,
        regions=check.file(data["regions"], ("regions",)) if "regions" in data else None,
        mask=check.file(data["mask"], ("mask",)) if data.get("mask") else None,
        levels=data.get("levels"),
        center=data.get("center", True),
        inference=inference,
        atlas=atlas,
        demographics=demographics,
        dtype=data.get("dtype", "float64"),
        preprocess=preprocess,
        store=store,
        lines=lines,
    )


def _preprocess_block(check: _Checker, block) -> dict | None:
    """Validate ``preprocess:``: T1 files (``t1``, pattern or list) or a BIDS folder (``bids``)."""
    if block is None:
        return None
    check.typed(block, "mapping", ("preprocess",))
    check.keys(block, _PREPROCESS, ("preprocess",))
    block = dict(block)
    if ("t1" in block) == ("bids" in block):
        raise check.fail(("preprocess",), "'preprocess' needs exactly one of 't1' (a pattern or "
                                          "a list of T1 files) or 'bids' (a BIDS folder).")
    for key in ("resolution", "fwhm"):
        check.typed(block.get(key), "number", ("preprocess", key))
    for key in ("n_jobs", "threads_per_subject", "random_state"):
        check.typed(block.get(key), "int", ("preprocess", key))
    check.typed(block.get("denoise"), "bool", ("preprocess", "denoise"))
    check.typed(block.get("syn_iterations"), "list", ("preprocess", "syn_iterations"))
    if block.get("exclude_qc", "none") not in ("none", "fail", "warn"):
        raise check.fail(("preprocess", "exclude_qc"), "'exclude_qc' must be none, fail or warn "
                                                       f"(found {block['exclude_qc']!r}).")
    if "bids" in block:
        block["bids"] = check.file(block["bids"], ("preprocess", "bids"))
    elif isinstance(block["t1"], str):
        block["t1"] = str(check.file(block["t1"], ("preprocess", "t1"), must_exist=False))
    elif isinstance(block["t1"], list):
        block["t1"] = [str(check.file(p, ("preprocess", "t1", i)))
                       for i, p in enumerate(block["t1"])]
    else:
        raise check.fail(("preprocess", "t1"), "'t1' must be a glob pattern or a list of files.")
    return block


# ================================================================================ longitudinal

_LONG_TOP = {
    "type": "text", "name": "text", "participants": "file", "id_column": "text", "pre": "file",
    "post": "file", "freesurfer": "mapping", "session_pre": "text", "session_post": "text",
    "columns": "list", "tiv": "mapping", "covariates": "text", "n_perm": "int",
    "two_sided": "bool", "random_state": "int", "n_jobs": "int", "clinical_pls": "mapping",
    "transcriptomics": "mapping", "enrichment": "mapping", "output": "folder",
}
_LONG_FS = {"subjects_dir": "folder", "annot": "text", "measure": "text", "subjects": "list"}
_LONG_TIV = {"pre": "text", "post": "text"}
_LONG_PLS = {"clinical_pre": "text", "clinical_post": "text", "n_components": "int",
             "n_perm": "int", "n_boot": "int", "cv": "loo, an integer or null"}
_LONG_TX = {"expression": "data", "hemisphere": "text", "centroids": "data",
            "centroid_names": "list", "annot_lh": "data", "sphere_lh": "data",
            "annot_rh": "data", "sphere_rh": "data", "n_components": "int", "n_spins": "int",
            "spin_method": "text", "n_boot": "int", "bootstrap": "text", "n_blocks": "int",
            "fdr_alpha": "number"}
_LONG_ENRICH = {"gene_sets": "list", "methods": "list", "n_perm": "int", "ranking": "text",
                "weight": "number", "min_size": "int", "max_size": "int"}
_GENE_SET = {"source": "data", "name": "text", "methods": "list", "min_size": "int",
             "max_size": "int"}
_CHOICES = {("transcriptomics", "hemisphere"): ("lh", "rh", "both"),
            ("transcriptomics", "spin_method"): ("vasa", "alexander-bloch", "hungarian"),
            ("transcriptomics", "bootstrap"): ("regions", "blocks"),
            ("enrichment", "ranking"): ("weight", "z")}
ENRICHMENT_METHODS = ("gsea", "ora", "spatial")


@dataclass(frozen=True)
class LongitudinalSpec:
    """A validated ``type: longitudinal`` study file (Study B: pre/post regional change).

    Paths are absolute; data given by registry name (e.g. ``ahba-dk83``) are resolved to the
    cached file and the names kept in ``datasets`` (key path -> registry name) for provenance.
    ``clinical_pls``, ``transcriptomics`` and ``enrichment`` are None when the block is absent.
    """

    source: Path
    name: str
    participants: Path
    output: Path
    pre: Path | None = None
    post: Path | None = None
    freesurfer: dict | None = None
    id_column: str | None = None
    session_pre: str | None = None
    session_post: str | None = None
    columns: list | None = None
    tiv: dict | None = None
    covariates: str = "1"
    n_perm: int = 5000
    two_sided: bool = True
    random_state: int = 0
    n_jobs: int = 1
    clinical_pls: dict | None = None
    transcriptomics: dict | None = None
    enrichment: dict | None = None
    datasets: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict, repr=False)

    def where(self, *key) -> str:
        """``"ect.yaml, line 12"`` for a key path (or the nearest parent that has a line)."""
        return StudySpec.where(self, *key)  # same lookup; StudySpec only reads source and lines


def _data(check: _Checker, value, key: tuple, datasets: dict) -> Path:
    """A registry name (resolved in the data cache) or a file relative to the study file."""
    from .datasets.fetchers import DataNotFoundError, get_path
    from .datasets.registry import REGISTRY

    if isinstance(value, str) and value in REGISTRY:
        try:
            path = get_path(value)
        except DataNotFoundError as err:
            raise check.fail(key, f"'{key[-1]}' names the dataset {value!r}: {err}") from None
        datasets[".".join(map(str, key))] = value
        return path
    if isinstance(value, str) and not Path(value).suffix and "/" not in value:
        close = difflib.get_close_matches(value, list(REGISTRY), n=1)
        hint = f" Did you mean the dataset '{close[0]}'?" if close else ""
        path = check.file(value, key, must_exist=False)
        if not path.exists():
            raise check.fail(key, f"'{key[-1]}' names {value!r}, which is neither a registered "
                                  f"dataset nor an existing file.{hint} Datasets: "
                                  f"{', '.join(sorted(REGISTRY))}.")
    return check.file(value, key)


def _block(check: _Checker, data: Mapping, name: str, schema: Mapping[str, str]) -> dict | None:
    block = data.get(name)
    if block is None:
        return None
    check.typed(block, "mapping", (name,))
    check.keys(block, schema, (name,))
    block = dict(block)
    for key, kind in schema.items():
        if kind in ("text", "int", "number", "bool", "list", "mapping"):
            check.typed(block.get(key), kind, (name, key))
        choices = _CHOICES.get((name, key))
        if choices and key in block and block[key] not in choices:
            raise check.fail((name, key), f"'{key}' must be one of {', '.join(choices)}; got "
                                          f"{block[key]!r}.")
    return block


def _gene_sets(check: _Checker, entries, datasets: dict, methods) -> list[dict]:
    out = []
    for i, entry in enumerate(entries):
        key = ("enrichment", "gene_sets", i)
        if isinstance(entry, (str, os.PathLike)):
            entry = {"source": entry}
        if not isinstance(entry, Mapping):
            raise check.fail(key, f"each gene_sets entry must be a dataset name, a file, or a "
                                  f"mapping with 'source'; got {entry!r}.")
        check.keys(entry, _GENE_SET, key)
        if "source" not in entry:
            raise check.fail(key, "this gene_sets entry has no 'source' (a dataset name such as "
                                  "celltypes-seidlitz2020, or a GMT/CSV file).")
        for k, kind in _GENE_SET.items():
            if kind != "data":
                check.typed(entry.get(k), kind, key + (k,))
        path = _data(check, entry["source"], key + ("source",), datasets)
        table = path.suffix.lower() in (".csv", ".tsv", ".txt")
        chosen = entry.get("methods", methods)
        bad = [m for m in chosen if m not in ENRICHMENT_METHODS]
        if bad:
            raise check.fail(key + ("methods",), f"unknown enrichment method(s) {bad}; choose "
                                                 f"from {', '.join(ENRICHMENT_METHODS)}.")
        name = entry.get("name") or (entry["source"] if datasets.get(
            ".".join(map(str, key + ("source",)))) else path.stem)
        out.append({"name": str(name), "path": path, "format": "table" if table else "gmt",
                    "methods": list(chosen), "min_size": entry.get("min_size", 5),
                    # cell-type tables hold classes of ~100-1,100 genes, GO terms are smaller
                    "max_size": entry.get("max_size", 2000 if table else 500)})
    names = [e["name"] for e in out]
    if len(set(names)) != len(names):
        raise check.fail(("enrichment", "gene_sets"), f"gene_sets names repeat ({names}); give "
                                                      "each entry a distinct 'name'.")
    return out


def load_longitudinal_study(path: str | os.PathLike) -> LongitudinalSpec:
    """Read and validate a ``type: longitudinal`` study file (Study B).

    Parameters
    ----------
    path : path
        The YAML study file. Keys: ``participants``; ``pre`` and ``post`` (subjects x regions
        tables) or ``freesurfer`` (``subjects_dir``, ``annot``, ``measure``, ``subjects``) with
        ``session_pre``/``session_post``; ``columns``; ``tiv`` (``pre``/``post`` participants
        columns, adds ``delta_tiv``); ``covariates`` (e.g. ``"1 + delta_tiv"``); ``n_perm``,
        ``two_sided``, ``random_state``, ``n_jobs``; blocks ``clinical_pls``,
        ``transcriptomics`` and ``enrichment``; ``output``.

    Returns
    -------
    LongitudinalSpec

    Raises
    ------
    StudyFileError
        With the file, line and key: unknown keys (with the closest valid key), missing keys,
        wrong types or choices, missing files or datasets not yet fetched.

    Examples
    --------
    >>> spec = load_longitudinal_study("ect.yaml")  # doctest: +SKIP
    >>> spec.covariates  # doctest: +SKIP
    '1 + delta_tiv'
    """
    source, data, lines = read_study_yaml(path)
    check = _Checker(source, lines)
    check.keys(data if data is not None else {}, _LONG_TOP, ())
    data = dict(data or {})
    if data.get("type") != "longitudinal":
        raise check.fail(("type",), f"'type' must be longitudinal here; got {data.get('type')!r}.")
    for key, kind in _LONG_TOP.items():
        if kind in ("text", "int", "bool", "mapping"):
            check.typed(data.get(key), kind, (key,))
    if "participants" not in data:
        raise StudyFileError(f"{source}: missing required key participants.")
    has_tables = "pre" in data or "post" in data
    if has_tables == ("freesurfer" in data) or (has_tables and not ("pre" in data
                                                                   and "post" in data)):
        raise StudyFileError(f"{source}: give either both 'pre' and 'post' (subjects x regions "
                             "tables) or 'freesurfer' (a SUBJECTS_DIR), not both or neither.")
    columns = data.get("columns")
    if isinstance(columns, str):
        columns = [columns]
    check.typed(columns, "list", ("columns",))
    datasets: dict = {}
    freesurfer = _block(check, data, "freesurfer", _LONG_FS)
    if freesurfer is not None:
        if "subjects_dir" not in freesurfer:
            raise check.fail(("freesurfer",), "freesurfer needs 'subjects_dir'.")
        freesurfer["subjects_dir"] = check.file(freesurfer["subjects_dir"],
                                                ("freesurfer", "subjects_dir"))
        if not (data.get("session_pre") and data.get("session_post")):
            raise check.fail(("freesurfer",), "with freesurfer, give session_pre and "
                                              "session_post: the session labels in the subject "
                                              "folder names (e.g. '01' for 13900_01.long.base).")
    tiv = _block(check, data, "tiv", _LONG_TIV)
    if tiv is not None and set(tiv) != {"pre", "post"}:
        raise check.fail(("tiv",), "tiv needs 'pre' and 'post': the participants columns of TIV "
                                   "per session (delta_tiv = post - pre is added).")
    pls = _block(check, data, "clinical_pls", _LONG_PLS)
    if pls is not None:
        for key in ("clinical_pre", "clinical_post"):
            if key not in pls:
                raise check.fail(("clinical_pls",), f"clinical_pls needs '{key}' (a "
                                                    "participants column, e.g. hamd_pre).")
        cv = pls.get("cv", "loo")
        if not (cv is None or cv == "loo" or (isinstance(cv, int) and not isinstance(cv, bool)
                                              and cv >= 2)):
            raise check.fail(("clinical_pls", "cv"), f"'cv' must be loo, an integer >= 2 or "
                                                     f"null; got {cv!r}.")
    tx = _block(check, data, "transcriptomics", _LONG_TX)
    if tx is not None:
        if "expression" not in tx:
            raise check.fail(("transcriptomics",), "transcriptomics needs 'expression' (a dataset "
                                                   "name such as ahba-dk83, or a file).")
        for key, kind in _LONG_TX.items():
            if kind == "data" and tx.get(key) is not None:
                tx[key] = _data(check, tx[key], ("transcriptomics", key), datasets)
        for hemi in ("lh", "rh"):
            if (f"annot_{hemi}" in tx) != (f"sphere_{hemi}" in tx):
                raise check.fail(("transcriptomics",), f"give annot_{hemi} and sphere_{hemi} "
                                                       "together (annotation + sphere).")
    enrich = _block(check, data, "enrichment", _LONG_ENRICH)
    if enrich is not None:
        if tx is None:
            raise check.fail(("enrichment",), "enrichment ranks the genes of the transcriptomics "
                                              "step: add a 'transcriptomics' block.")
        if not enrich.get("gene_sets"):
            raise check.fail(("enrichment",), "enrichment needs 'gene_sets' (dataset names or "
                                              "GMT/CSV files).")
        methods = enrich.get("methods", list(ENRICHMENT_METHODS))
        enrich["gene_sets"] = _gene_sets(check, enrich["gene_sets"], datasets, methods)
    output = data.get("output") or f"{source.stem}-results"
    return LongitudinalSpec(
        source=source, name=data.get("name") or source.stem,
        participants=check.file(data["participants"], ("participants",)),
        output=check.file(output, ("output",), must_exist=False),
        pre=check.file(data["pre"], ("pre",)) if "pre" in data else None,
        post=check.file(data["post"], ("post",)) if "post" in data else None,
        freesurfer=freesurfer, id_column=data.get("id_column"),
        session_pre=data.get("session_pre"), session_post=data.get("session_post"),
        columns=columns, tiv=tiv, covariates=data.get("covariates", "1"),
        n_perm=data.get("n_perm", 5000), two_sided=data.get("two_sided", True),
        random_state=data.get("random_state", 0), n_jobs=data.get("n_jobs", 1),
        clinical_pls=pls, transcriptomics=tx, enrichment=enrich, datasets=datasets, lines=lines)
