"""Prefect artifacts of a pipeline (XTRA, Procgen, Meta-World, exploration): the report (markdown, plots
inlined) and the metrics summary (tables), published on the flow run that ran the report stage. Pure helpers
plus :func:`publish_artifacts`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

# Where a pipeline's report stage leaves its outputs (relative to the pipeline's folder).
REPORT_MD = Path("reports/report.md")
SUMMARY_JSON = Path("metrics/summary.json")
# Each pipeline's folder in the repo (where its dvc.yaml is): the XTRA pipeline at the root.
PIPELINE_DIRS: dict[str, Path] = {"xtra": Path("."), "procgen": Path("procgen"), "metaworld": Path("metaworld"),
                                  "explore": Path("explore")}


def summary_rows(data: Any) -> list[dict[str, Any]]:
    """A JSON table -> rows with the same columns (missing cells None).

    ``{"xtra": {"Pong": 1.2, ...}, ...}`` -> ``[{"name": "xtra", "Pong": 1.2, ...}, ...]`` (nested dicts
    flatten to ``a.b`` columns; floats are rounded to 4 significant digits); ``{"x": 1.0}`` -> ``[{"name": "x", "value": 1.0}]``; a list of dicts
    is taken as rows.
    """

    def flat(prefix: str, v: Any, out: dict[str, Any]) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                flat(f"{prefix}.{k}" if prefix else str(k), sub, out)
        else:
            if isinstance(v, float):  # a table for people: 4 significant digits (1234.5678 -> 1235.0)
                v = float(f"{v:.4g}")
            out[prefix or "value"] = v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)

    rows: list[dict[str, Any]] = []
    if isinstance(data, dict):
        for key, val in data.items():
            row: dict[str, Any] = {"name": str(key)}
            flat("", val, row)
            rows.append(row)
    elif isinstance(data, list):
        for i, val in enumerate(data):
            row = {}
            if isinstance(val, dict):
                flat("", val, row)
            else:
                row.update(name=str(i), value=val)
            rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return [{c: row.get(c) for c in columns} for row in rows]


def summary_tables(data: Any, pipeline: str = "xtra") -> dict[str, list[dict[str, Any]]]:
    """metrics/summary.json -> table artifacts by key (``<pipeline>-summary``, ``<pipeline>-aggregate``).

    The XTRA report writes ``{"runs": {target-run: {...}}, "aggregate": {run: {...}}, ...}`` and the Procgen
    report ``{"games": {game/variant/levels: {...}}, "aggregate": {variant/levels: {...}}, ...}``: that gives
    ``<pipeline>-summary`` (one row per run or game) and ``<pipeline>-aggregate``. The Meta-World report's
    ``{"variants": {variant: {...}}, "tasks": {variant/column/task: success}, ...}`` gives
    ``<pipeline>-summary`` (one row per variant and task, see :func:`task_rows`) and ``<pipeline>-aggregate``
    (one row per variant, see :func:`variant_rows`). Any other shape (e.g. ``{run: {game: number}}``)
    becomes one ``<pipeline>-summary`` table via :func:`summary_rows`.
    """
    rows_key = next((k for k in ("runs", "games") if isinstance(data, dict) and isinstance(data.get(k), dict)), None)
    if rows_key is not None:
        tables = {f"{pipeline}-summary": summary_rows(data[rows_key])}
        if isinstance(data.get("aggregate"), dict):
            tables[f"{pipeline}-aggregate"] = summary_rows(data["aggregate"])
        return {k: v for k, v in tables.items() if v}
    if isinstance(data, dict) and isinstance(data.get("variants"), dict):
        tables = {f"{pipeline}-summary": task_rows(data["tasks"]) if isinstance(data.get("tasks"), dict) else [],
                  f"{pipeline}-aggregate": variant_rows(data["variants"])}
        return {k: v for k, v in tables.items() if v}
    rows = summary_rows(data)
    return {f"{pipeline}-summary": rows} if rows else {}


def variant_rows(variants: dict[str, Any]) -> list[dict[str, Any]]:
    """The Meta-World report's ``variants`` -> one row per variant: each figure's mean and standard error
    (``train.mean``, ``train.se``, ``zero_shot.mean``, ..., differences as ``.difference``, ``.se``, ``.z``)
    in the report's order; the per-seed values (``seeds``) are left to the JSON."""

    def drop_seeds(v: Any) -> Any:
        return {k: drop_seeds(x) for k, x in v.items() if k != "seeds"} if isinstance(v, dict) else v

    return summary_rows({name: drop_seeds(row) for name, row in variants.items()})


def task_rows(tasks: dict[str, Any]) -> list[dict[str, Any]]:
    """The Meta-World report's ``tasks`` (``{"mz/train/reach-v3": 0.5, "mz/zero_shot/door-close-v3": 0.0, ...}``)
    -> one row per variant and task with a column per figure (``[{"name": "mz/reach-v3", "train": 0.5,
    "zero_shot": None, ...}, ...]``; a training task has only ``train``). Keys without three parts keep a
    row of their own (``value``)."""
    rows: dict[str, dict[str, Any]] = {}
    for key, value in tasks.items():
        parts = str(key).split("/")
        if len(parts) == 3:
            variant, column, task = parts
            rows.setdefault(f"{variant}/{task}", {})[column] = value
        else:
            rows.setdefault(str(key), {})["value"] = value
    return summary_rows(rows)


def embed_images(md: str, folder: Path) -> str:
    """Markdown with every local image link ``![alt](file.png)`` (relative to ``folder``) replaced by
    the image itself as a ``data:`` URI, so the Prefect UI shows the plots (a browser cannot open
    files on the worker). Links to missing files and to URLs are left as they are."""
    import base64
    import re

    def inline(match: re.Match) -> str:
        alt, target = match.group(1), match.group(2)
        path = folder / target
        if "://" in target or target.startswith("data:") or not path.is_file():
            return match.group(0)
        kind = "svg+xml" if path.suffix == ".svg" else path.suffix.lstrip(".").lower().replace("jpg", "jpeg")
        return f"![{alt}](data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", inline, md)


def publish_artifacts(repo: str, pipeline: str = "xtra") -> dict[str, str | None]:
    """Publish the pipeline's ``reports/report.md`` as a markdown artifact (key ``<pipeline>-report``) and
    its ``metrics/summary.json`` as table artifacts (key ``<pipeline>-summary``, plus
    ``<pipeline>-aggregate`` for the report stage's aggregates) on the current flow run; ``pipeline``:
    ``xtra`` (files at the repo root), ``procgen`` (under ``procgen/``), ``metaworld`` (under
    ``metaworld/``) or ``explore`` (under ``explore/``); another name is taken as the folder. Missing files
    are skipped with a warning. Returns the artifact ids by key."""
    log = get_run_logger()
    root = Path(repo) / PIPELINE_DIRS.get(pipeline, Path(pipeline))
    out: dict[str, str | None] = {f"{pipeline}-report": None, f"{pipeline}-summary": None}
    if (root / REPORT_MD).is_file():
        md = embed_images((root / REPORT_MD).read_text(encoding="utf-8", errors="replace"), (root / REPORT_MD).parent)
        out[f"{pipeline}-report"] = str(create_markdown_artifact(md, key=f"{pipeline}-report",
                                                                 description=f"{root / REPORT_MD}"))
    else:
        log.warning("no %s in %s: no report artifact", REPORT_MD, root.resolve())
    if (root / SUMMARY_JSON).is_file():
        try:
            tables = summary_tables(json.loads((root / SUMMARY_JSON).read_text(encoding="utf-8")), pipeline)
        except json.JSONDecodeError as exc:
            log.warning("unreadable %s: %s", SUMMARY_JSON, exc)
            tables = {}
        for key, rows in tables.items():
            out[key] = str(create_table_artifact(rows, key=key, description=f"{SUMMARY_JSON}"))
    else:
        log.warning("no %s in %s: no summary table artifact", SUMMARY_JSON, root.resolve())
    return out
