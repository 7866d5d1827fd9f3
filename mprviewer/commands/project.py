"""``mprviewer project``: make a labeling project, add studies, mark, show status, export."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXAMPLES = """examples:
  mprviewer project create heads --studies ~/rsna/ --labels ich
  mprviewer project create bleeds --studies cases.zip more/ --labels anomaly
  mprviewer project add heads --studies ~/rsna-batch2/
  mprviewer project add heads --server lab --modality CT --date 20240101-   (PACS matches)
  mprviewer project status heads
  mprviewer project status heads --json
  mprviewer project mark heads --study 0 --label subdural --slices "12-15; 20" --reader ann
  mprviewer project mark heads --study 0 --label subdural --slices 20 --unmark --reader ann
  mprviewer project mark heads --study 0 --done --reader ann
  mprviewer project mark heads --study 1.2.840.1234 --no-finding --reader ann
  mprviewer project mark heads --study 2 --unreadable "motion artefacts" --reader ann
  mprviewer project export heads --to csv labels.csv --reader ann
  mprviewer project export heads --to sr reports/ --reader ann
  mprviewer project create team --studies ~/rsna/ --db postgresql://owner@dbhost:5432/heads
  mprviewer project join postgresql://ann@dbhost:5432/heads team-ann
  mprviewer project assign team --readers ann,bob,cy --per-study 2 --seed 1 --adjudicator dee
  mprviewer project agreement team --json
  mprviewer project adjudicate team --reader dee
  mprviewer project adjudicate team --study 3 --accept majority --done --reader dee
  mprviewer project export team --to csv final.csv --final --rule majority
  mprviewer project log team --study 0 --json

SOURCE is a folder holding one study per sub-folder or per zip (or one study's files), a
zip, or a DICOMDIR. Images stay where they are; the project records where. The reader name
defaults to $MPRVIEWER_READER, else the login name. Statuses: unread, in progress, done,
no finding, unreadable. Exports: csv (RSNA layout: ID_<SOPInstanceUID>_<label>,0|1),
original (the original tool's JSON keyed by series folder), full (everything, with the event
log), sr (one DICOM SR per study into a folder). csv, original and sr hold the studies the
reader finished (done or no finding).
"""


class _WideActions(argparse.RawDescriptionHelpFormatter):
    """Each action's summary on its own line beside its name: argparse measures action names
    two columns short of their indent, so the longest (adjudicate) would wrap."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            longest = max((len(name) for name in action.choices), default=0)
            self._action_max_length = max(self._action_max_length,
                                          longest + self._current_indent + 4)


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name, help=summary,
        description="A labeling project: a folder holding a worklist of studies, a label set "
        "with hotkeys, each reader's status per study and every mark as an event.",
        epilog=EXAMPLES, formatter_class=_WideActions)
    actions = parser.add_subparsers(dest="project_action", metavar="ACTION")

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--studies", nargs="+", default=[], metavar="SOURCE",
                       help="folders (one study per sub-folder or zip), zips, DICOMDIRs")
        pacs = p.add_argument_group("PACS (the filters of 'mprviewer pacs search')")
        pacs.add_argument("--server", help="DICOMweb root, dimse://AET@host:port or a saved "
                          "server name; its studies matching the filters are added")
        pacs.add_argument("--patient", metavar="NAME")
        pacs.add_argument("--patient-id", metavar="ID")
        pacs.add_argument("--modality", metavar="MOD")
        pacs.add_argument("--date", metavar="RANGE", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
        pacs.add_argument("--accession", metavar="N")
        pacs.add_argument("--study-uid", metavar="UID")
        pacs.add_argument("--limit", type=int, metavar="N")

    create = actions.add_parser("create", help="make a project folder from sources",
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("dir", metavar="DIR", help="new or empty folder for the project")
    sources(create)
    create.add_argument("--labels", default="ich", metavar="ich|anomaly|FILE",
                        help="label set: built-in 'ich' (default) or 'anomaly', or a JSON file")
    create.add_argument("--db", metavar="URL", help="keep the labels in a shared PostgreSQL "
                        "database (postgresql://USER@HOST:PORT/DB, new and empty) instead of "
                        "the folder; a password in URL is used for this command only")

    join = actions.add_parser("join", help="join a shared project from another machine",
                              epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    join.add_argument("url", metavar="URL", help="postgresql://READER@HOST:PORT/DB")
    join.add_argument("dir", metavar="DIR", help="new or empty folder (holds settings only)")

    assign = actions.add_parser("assign", help="give each study to k readers, balanced",
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    assign.add_argument("dir", metavar="DIR")
    assign.add_argument("--readers", required=True, metavar="A,B,C")
    assign.add_argument("--per-study", type=int, default=2, metavar="K",
                        help="readers per study (default 2)")
    assign.add_argument("--seed", type=int, metavar="N", help="repeatable assignment")
    assign.add_argument("--adjudicator", default="", metavar="NAME[,NAME]",
                        help="who may see every reading and record final labels")

    add = actions.add_parser("add", help="add more studies (already known ones are skipped)")
    add.add_argument("dir", metavar="DIR")
    sources(add)

    status = actions.add_parser("status", help="counts per reader and status, one row per "
                                "study")
    status.add_argument("dir", metavar="DIR")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    mark = actions.add_parser("mark", help="add or remove marks, or set a study's status",
                              epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    mark.add_argument("dir", metavar="DIR")
    mark.add_argument("--study", required=True, metavar="UID|INDEX")
    mark.add_argument("--series", metavar="N", help="series index in the study, UID or name "
                      "(default: the series with the most images)")
    mark.add_argument("--plane", choices=("axial", "coronal", "sagittal"),
                      help="plane the slice numbers belong to (default: the acquisition plane)")
    mark.add_argument("--label", metavar="KEY")
    mark.add_argument("--slices", metavar="RANGES", help='e.g. "0-3; 9"')
    mark.add_argument("--unmark", action="store_true", help="remove these marks")
    mark.add_argument("--reader", metavar="NAME", help="default: $MPRVIEWER_READER or the login")
    what = mark.add_mutually_exclusive_group()
    what.add_argument("--done", action="store_true", help="the reader finished the study")
    what.add_argument("--no-finding", action="store_true",
                      help="the reader looked and found nothing (not the same as unread)")
    what.add_argument("--unreadable", metavar="REASON", help="the study cannot be read")
    what.add_argument("--in-progress", action="store_true", help="reopen the study")

    export = actions.add_parser("export", help="write labels as csv, original, full or sr",
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("dir", metavar="DIR")
    export.add_argument("--to", required=True, choices=("original", "full", "csv", "sr"),
                        dest="fmt")
    export.add_argument("out", metavar="OUT", help="file (a folder for sr)")
    export.add_argument("--reader", metavar="NAME", help="whose labels (needed when the "
                        "project has several readers; full exports everyone without it)")
    export.add_argument("--force", action="store_true", help="overwrite OUT")
    export.add_argument("--final", action="store_true", help="the final labels: adjudicated "
                        "ones where they exist, else --rule over the readings")
    export.add_argument("--rule", default="majority", metavar="majority|union|reader:NAME",
                        help="with --final, for studies not adjudicated (default: majority)")

    judge = actions.add_parser("adjudicate", help="list the studies readers disagree on, or "
                               "record final labels", epilog=EXAMPLES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    judge.add_argument("dir", metavar="DIR")
    judge.add_argument("--study", metavar="UID|INDEX", help="the study to record labels for "
                       "(without it: list the adjudication worklist)")
    judge.add_argument("--label", metavar="KEY")
    judge.add_argument("--slices", metavar="RANGES")
    judge.add_argument("--series", metavar="N")
    judge.add_argument("--plane", choices=("axial", "coronal", "sagittal"))
    judge.add_argument("--unmark", action="store_true")
    judge.add_argument("--accept", metavar="majority|union|reader:NAME",
                       help="take the rule's labels as final (and mark the study done)")
    judge.add_argument("--done", action="store_true", help="the final labels are complete")
    judge.add_argument("--reader", metavar="NAME", help="the adjudicator (default: the "
                       "database role, or $MPRVIEWER_READER)")
    judge.add_argument("--json", action="store_true", help="machine-readable worklist")
    agree = actions.add_parser("agreement", help="kappa and percent agreement per label, at "
                               "image and study level")
    agree.add_argument("dir", metavar="DIR")
    agree.add_argument("--json", action="store_true", help="machine-readable output")
    log = actions.add_parser("log", help="every event: reader, time, study, series, change")
    log.add_argument("dir", metavar="DIR")
    log.add_argument("--study", metavar="UID|INDEX", help="only this study's events")
    log.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(project_parser=parser)
    return parser


def _usage(message: str) -> int:
    print(f"mprviewer project: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "project_action", None)
    if action is None:
        args.project_parser.print_help(sys.stderr)
        return 2
    try:
        return _run(action, args)
    except Exception as exc:
        from mprviewer.errors import ProjectError
        from mprviewer.project.store import database_problem

        problem = database_problem(exc)
        if problem is None:
            raise
        raise ProjectError(problem) from None


def _run(action: str, args: argparse.Namespace) -> int:
    return {"create": _create, "add": _add, "status": _status, "mark": _mark,
            "export": _export, "join": _join, "assign": _assign,
            "agreement": _agreement, "log": _log,
            "adjudicate": _adjudicate}[action](args)


# -- create / add -----------------------------------------------------------------------------
def _pacs(args: argparse.Namespace) -> list[tuple[Any, Any]]:
    filters = (args.patient, args.patient_id, args.modality, args.date, args.accession,
               args.study_uid, args.limit)
    if not args.server:
        if any(v is not None for v in filters):
            raise _Usage("the PACS filters need --server")
        return []
    from mprviewer.project.remote import pacs_package

    pacs = pacs_package()
    query = pacs.StudyQuery(patient_name=args.patient, patient_id=args.patient_id,
                            modality=args.modality, date=args.date, accession=args.accession,
                            study_uid=args.study_uid, limit=args.limit)
    return [(args.server, query)]


class _Usage(Exception):
    pass


def _progress(sources: list[str]) -> Any:
    from mprviewer.commands._progress import Progress
    from mprviewer.project.indexer import plan_source

    total = sum(len(plan_source(s).locations) for s in sources)
    return Progress(total, stream=sys.stderr).step if total else None


def _report(report: Any, project: Any) -> None:
    n = len(report.added)
    print(f"{project.folder}: added {n} stud{'y' if n == 1 else 'ies'} "
          f"({len(project)} in the project)")
    if report.duplicates:
        print(f"skipped {len(report.duplicates)} already in the project:", file=sys.stderr)
        for line in report.duplicates[:20]:
            print(f"  {line}", file=sys.stderr)
    for line in report.relocated:
        print(f"moved: {line}", file=sys.stderr)
    for line in report.problems[:50]:
        print(f"skipped {line}", file=sys.stderr)


def _create(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    try:
        pacs = _pacs(args)
    except _Usage as exc:
        return _usage(str(exc))
    if not args.studies and not pacs:
        return _usage("give --studies SOURCE... and/or --server with filters")
    step = _progress(args.studies)
    project = Project.create(args.dir, args.studies, labels=args.labels, pacs=pacs, step=step,
                             database=args.db)
    with project:
        if project.shared:
            print(f"labels in {project.database}")
        _report(project.last_report, project)
        print(f"label set {project.label_set.name}: "
              + ", ".join(f"{lab.hotkey or '-'} {lab.key}" for lab in project.label_set.labels))
    return 0


def _add(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    try:
        pacs = _pacs(args)
    except _Usage as exc:
        return _usage(str(exc))
    if not args.studies and not pacs:
        return _usage("give --studies SOURCE... and/or --server with filters")
    with Project.open(args.dir) as project:
        step = _progress(args.studies)
        _report(project.add(args.studies, pacs=pacs, step=step), project)
    return 0


# -- status -----------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.open(args.dir) as project:
        summary = project.summary()
        if args.json:
            json.dump(summary, sys.stdout, indent=1, ensure_ascii=False)
            print()
            return 0
        readers = list(summary["counts"])
        total = len(summary["studies"])
        print(f"{project.name}: {total} studies, label set {project.label_set.name}")
        for reader, counts in summary["counts"].items():
            finished = counts["done"] + counts["no finding"]
            parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            print(f"  {reader}: {finished} / {total} finished ({parts})")
        if not readers:
            print("  nobody has read anything yet")
        _missing(project)
        _offline(project)
        header = ["#", "study", *readers]
        reasons = {(info_id, r): st[1] for info_id, per in project.statuses().items()
                   for r, st in per.items() if st[1]}
        ids = [s.id for s in project.studies()]

        def cell(n: int, reader: str, status: str) -> str:
            reason = reasons.get((ids[n], reader))
            return f"{status} ({reason})" if reason else status

        rows = [[str(s["index"]), s["name"],
                 *(cell(n, r, s["statuses"].get(r, "unread")) for r in readers)]
                for n, s in enumerate(summary["studies"])]
        widths = [max(len(h), *(len(r[n]) for r in rows)) if rows else len(h)
                  for n, h in enumerate(header)]
        out = sys.stdout
        out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()
                  + "\n")
        out.write("".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                          + "\n" for r in rows))
    return 0


def _missing(project: Any) -> None:
    """Name the studies whose folders are gone (moved or renamed) on stderr."""
    from mprviewer.errors import ProjectError

    gone = []
    for info in project.studies():
        try:
            project.check_locations(info)
        except ProjectError as exc:
            gone.append(str(exc))
    for line in gone[:10]:
        print(f"warning: {line}", file=sys.stderr)
    if len(gone) > 10:
        print(f"warning: ... and {len(gone) - 10} more studies whose images are missing",
              file=sys.stderr)


def _offline(project: Any) -> None:
    """Say on stderr what waits in the offline queue and what the database refused."""
    waiting, refused = project.pending(), project.conflicts()
    if waiting:
        print(f"warning: {waiting} changes made while the database was away wait in "
              f"{project.queue.path}; they are sent with the next change", file=sys.stderr)
    for rows in refused[:10]:
        row = rows[0]
        what = row.get("status") or f"{row.get('action')} {row.get('label')} {row.get('slices')}"
        print(f"conflict: {row.get('reader')}'s change on study id {row.get('study_id')} "
              f"({what}, {row.get('time')}) was refused by the database (reassigned or "
              f"closed meanwhile); it is kept in {project.queue.conflicts_path}",
              file=sys.stderr)


# -- mark -------------------------------------------------------------------------------------
def _mark(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    status = ("done" if args.done else "no finding" if args.no_finding else
              "unreadable" if args.unreadable is not None else
              "in progress" if args.in_progress else None)
    if status is not None and (args.label or args.slices or args.unmark):
        return _usage("set a status (--done, --no-finding, --unreadable) or change marks "
                      "(--label, --slices), not both at once")
    if status is None and not (args.label and args.slices):
        return _usage("give --label KEY and --slices RANGES (or --done, --no-finding, "
                      "--unreadable REASON)")
    with Project.open(args.dir) as project:
        reader = args.reader or project.default_reader()
        study = project.study(args.study)
        if status is not None:
            project.set_status(study, reader, status, reason=args.unreadable or "")
            print(f"study {study.index} ({study.name}): {status} by {reader}")
            return 0
        mark = project.mark(study, args.label, args.slices, reader, series=args.series,
                            plane=args.plane, unmark=args.unmark)
        print(f"study {study.index} ({study.name}): {mark.label} on {mark.plane} slices "
              f"{mark.ranges or '(none)'} by {reader}")
    return 0


# -- teams -----------------------------------------------------------------------------------
def _names(text: str) -> list[str]:
    return [n.strip() for n in str(text or "").split(",") if n.strip()]


def _join(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.join(args.url, args.dir) as project:
        print(f"{project.folder}: joined {project.name} ({project.database}, {len(project)} "
              f"studies) as {project.default_reader()}")
    return 0


def _assign(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.open(args.dir) as project:
        load = project.assign(_names(args.readers), args.per_study, seed=args.seed,
                              adjudicators=_names(args.adjudicator))
        for reader, n in load.items():
            print(f"  {reader}: {n} stud{'y' if n == 1 else 'ies'}")
        if project.adjudicators():
            print(f"adjudicators: {', '.join(project.adjudicators())}")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.open(args.dir) as project:
        doc = project.agreement()
    if args.json:
        json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    readers = doc["readers"]
    if not readers:
        print("no study is finished by two or more readers yet")
        return 0
    method = "Cohen's kappa" if len(readers) == 2 else "Fleiss' kappa"
    print(f"readers: {', '.join(readers)} ({method})")

    def cell(stats: dict) -> str:
        kappa = "-" if stats["kappa"] is None else f"{stats['kappa']:.3f}"
        agree = "-" if stats["agreement"] is None else f"{100 * stats['agreement']:.1f}%"
        return f"{kappa:>7} {agree:>7} {stats['n']:>6}"

    width = max(len(k) for k in doc["labels"])
    print(f"{'label':<{width}}  {'image: kappa  agree      n':>22}   study: kappa  agree      n")
    for key, levels in doc["labels"].items():
        print(f"{key:<{width}}  {cell(levels['image'])}   {cell(levels['study'])}")
    return 0


def _log(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.open(args.dir) as project:
        study = None if args.study is None else project.study(args.study)
        events = project.events(study)
        names = {s.uid: f"{s.index} ({s.name})" for s in project.studies()}
    if args.json:
        keys = ("event_uid", "time", "reader", "study_uid", "series_uid", "action", "label",
                "plane", "slices", "status", "reason", "stage")
        json.dump([{k: e.get(k) for k in keys} for e in events], sys.stdout, indent=1,
                  ensure_ascii=False)
        print()
        return 0
    for e in events:
        if e["action"] == "status":
            change = e["status"] + (f" ({e['reason']})" if e.get("reason") else "")
        else:
            change = (f"{e['action']} {e.get('label')} {e.get('plane')} {e.get('slices')} "
                      f"in series {e.get('series_name') or e.get('series_uid')}")
        final = " [final]" if e.get("stage") == "final" else ""
        print(f"{e['time']}  {e['reader']}  study {names.get(e['study_uid'], e['study_uid'])}"
              f"  {change}{final}")
    if not events:
        print("no events yet", file=sys.stderr)
    return 0


def _adjudicate(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.open(args.dir) as project:
        if args.study is None:
            if args.label or args.slices or args.accept or args.done or args.unmark:
                return _usage("give --study for the labels to record")
            rows = project.adjudication()
            if args.json:
                json.dump(rows, sys.stdout, indent=1, ensure_ascii=False)
                print()
                return 0
            if not rows:
                print("no study to adjudicate: the readers agree on every study they all "
                      "finished")
            for r in rows:
                state = "adjudicated" if r["adjudicated"] else "open"
                print(f"{r['index']}  {r['name']}  {state}  readers {', '.join(r['readers'])}"
                      f"  disagree on {', '.join(r['labels'])}")
            return 0
        if bool(args.label) != bool(args.slices):
            return _usage("--label and --slices go together")
        if args.accept and args.label:
            return _usage("--accept takes a rule's labels; do not give --label as well")
        judge = args.reader or project.default_reader()
        info = project.study(args.study)
        project.adjudicate(info, judge, label=args.label, slices=args.slices,
                           series=args.series, plane=args.plane, unmark=args.unmark,
                           accept=args.accept, done=args.done)
        what = (f"accepted {args.accept}" if args.accept else
                f"{'unmarked' if args.unmark else 'marked'} {args.label} {args.slices}"
                if args.label else "done")
        print(f"study {info.index} ({info.name}): final labels {what} by {judge}")
    return 0


# -- export -----------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    from mprviewer.project import Project

    with Project.open(args.dir) as project:
        if not args.final and args.rule != "majority":
            return _usage("--rule goes with --final")
        result = project.export(args.fmt, os.fspath(args.out), reader=args.reader,
                                overwrite=args.force, final=args.rule if args.final else None)
    print(result)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
