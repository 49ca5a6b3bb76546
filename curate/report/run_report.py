"""A run's report: every section gathered from the run directory into one template context."""

from __future__ import annotations

import json
import time
from pathlib import Path

from curate.errors import ConfigError
from curate.report import THUMBNAILS
from curate.report.dedup import DedupFindings, dedup_findings
from curate.report.facts import RunFacts
from curate.report.funnel import funnel, reason_totals
from curate.report.metaclip import entry_distributions
from curate.report.plots import entry_curve_plot, histogram_plot
from curate.report.scores import histograms
from curate.report.thumbs import KEPT, Thumb, encode, fetch, locate, pick
from curate.stages.dedup.decontaminate import Decontaminate
from curate.versions import package_versions

MAX_ROW_GROUPS = 48  # row groups of the ingest output read for the galleries


def run_context(facts: RunFacts, eval_results: list[Path] = (), thumbnails: int = THUMBNAILS) -> dict:
    """Everything the run template shows."""
    steps = funnel(facts)
    ingested = steps[0].alive_in if steps else 0
    findings = dedup_findings(facts)
    reasons = reason_totals(steps)
    galleries, thumbs = _galleries(facts, steps, reasons, findings, thumbnails)
    return {
        "title": f"curate run report: {facts.summary.get('pipeline', facts.root.name)}",
        "run_dir": str(facts.root.resolve()),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((facts.root / "summary.json").stat().st_mtime)),
        "ingested": ingested,
        "curated": steps[-1].kept if steps else 0,
        "steps": steps,
        "run_warnings": facts.summary.get("warnings", []),
        "reasons": reasons,
        "histograms": [{"h": h, "plot": histogram_plot(h)} for h in histograms(facts)],
        "galleries": galleries,
        "metaclip": [{"d": d, "plot": entry_curve_plot(d)} for d in entry_distributions(facts)],
        "dedup": [_dedup_section(facts, f, thumbs) for f in findings],
        "evals": [_eval_table(path) for path in eval_results],
        "pipeline_text": facts.pipeline_text,
        "timings": facts.summary.get("stages", []),
        "versions": facts.summary.get("versions") or package_versions(),
        "versions_recorded": "versions" in facts.summary,
        "outputs": facts.summary.get("outputs", {}),
    }


def _galleries(facts: RunFacts, steps, reasons: list[tuple[str, str, int]], findings: list[DedupFindings],
               per_group: int) -> tuple[list[dict], dict]:
    """Kept samples and each drop reason's, with every thumbnail the dedup section needs."""
    located = locate(facts)
    picked = pick(located, per_group, MAX_ROW_GROUPS) if located.height else {}
    members = {m.uid for f in findings for group in f.groups for m in group}
    thumbs = fetch(facts, located, {uid for uids in picked.values() for uid in uids} | members)
    by_reason: dict[str, tuple[list[str], int]] = {}
    for reason, stage_id, n in reasons:  # a reason two stages give is one gallery
        stages, total = by_reason.get(reason, ([], 0))
        by_reason[reason] = (stages + [stage_id], total + n)
    groups = [(KEPT, "", steps[-1].kept if steps else 0)] + [
        (reason, ", ".join(stages), total) for reason, (stages, total) in by_reason.items()]
    galleries = [{"group": group, "stage": stage_id, "total": total,
                  "thumbs": [thumbs[uid] for uid in picked.get(group, []) if uid in thumbs]}
                 for group, stage_id, total in groups]
    return galleries, thumbs


def _dedup_section(facts: RunFacts, findings: DedupFindings, thumbs: dict[str, Thumb]) -> dict:
    """A stage's groups as rows of thumbnails; members outside the pool (evaluation images) too."""
    outside = _outside_thumbs(facts, findings) if findings.external else {}
    groups = []
    for group, more in zip(findings.groups, findings.more):
        row = [{"member": m, "thumb": thumbs.get(m.uid), "more": 0} for m in group]
        row += [{"member": None, "thumb": outside[m.duplicate_of], "more": 0} for m in group if m.duplicate_of in outside]
        if more:
            row.append({"member": None, "thumb": None, "more": more})
        groups.append(row)
    return {"f": findings, "groups": groups}


def _outside_thumbs(facts: RunFacts, findings: DedupFindings) -> dict[str, Thumb]:
    """Thumbnails of the evaluation samples a decontaminate stage matched, when its sets are here."""
    stage = next(s for s in facts.stages if s.id == findings.stage_id)
    if not isinstance(stage, Decontaminate):
        return {}
    wanted = {m.duplicate_of for group in findings.groups for m in group if m.duplicate_of}
    here = [str(facts.resolve(path) or path) for path in stage.params.eval_sets]
    stage = type(stage)(stage.params.model_copy(update={"eval_sets": here}), stage.id)
    try:
        rows = [row for shard in stage.eval_rows() for row in shard if row[0] in wanted]
    except (ConfigError, OSError):
        return {}  # the evaluation sets are not where the run found them: the section shows their ids
    return {key: Thumb(key, caption, encode(image) if image else None) for key, image, caption in rows}


def _eval_table(path: Path) -> dict:
    """An evaluation's results.json (curate eval) as rows: task, main metric, value."""
    results = json.loads(Path(path).read_text())
    rows = [(task["name"], task["main_metric"], task["main"]) for task in results.get("tasks", [])]
    return {"path": str(path), "checkpoint": results.get("checkpoint", ""), "suite": results.get("suite", ""),
            "rows": rows, "average": results.get("average"), "groups": results.get("groups", {})}
