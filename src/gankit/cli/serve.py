"""``gankit serve | report``: the web page (playground, explorer) and a run's self-contained report."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import output_path
from gankit.errors import UsageError


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is an integer in 0..65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is an integer in 0..65535, got {value}")
    return value


def cmd_serve(args) -> int:
    import webbrowser

    from gankit.web.app import build_app
    from gankit.web.server import make_server

    app = build_app(args.paths, args.device)
    for path, model in zip(args.paths, app.models):
        if model.pipeline.source_note:
            print(f"{path}: {model.pipeline.source_note}")
    try:
        server = make_server(app, args.host, args.port, quiet=not args.verbose, allowed_hosts=tuple(args.allow_host))
    except OSError as error:
        raise OSError(
            error.errno,
            f"cannot listen on {args.host}:{args.port} ({error.strerror}); choose another --port (0 picks a free one)",
        ) from None
    host, bound = server.server_address[:2]
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{bound}/"
    loaded = (
        f", exploring {len(args.paths)} generator(s)"
        if args.paths
        else " (pass run folders or exports to explore them)"
    )
    print(f"gankit serve: {url}#playground{loaded}; Ctrl-C stops", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"gankit serve: warning: listening on {args.host}: anyone who can reach this machine can use it")
    if args.open:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\ngankit serve: stopped")
    finally:
        server.server_close()
    return 0


def cmd_report(args) -> int:
    from gankit.formats import locate_generator, split_source
    from gankit.web.report import write_report

    if split_source(args.run_dir)[1] is not None:  # a selector names a generator the run must hold: checked first
        locate_generator(args.run_dir)
    path = write_report(args.run_dir, args.out)
    print(f"report: {path} ({path.stat().st_size / 1024:,.0f} KiB, opens offline)")
    return 0


def cmd_compare(args) -> int:
    from gankit.web.compare import write_comparison

    if len(args.runs) < 2:
        raise UsageError("a comparison needs at least two run folders")
    for folder in args.runs:
        if not (Path(folder) / "config.json").is_file():
            raise UsageError(f"{folder} is not a run folder (no config.json)")
    path = write_comparison(args.runs, args.out)
    print(f"comparison of {len(args.runs)} runs: {path} ({path.stat().st_size / 1024:,.0f} KiB, opens offline)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web page: a GAN playground on 2D points, and an explorer for generators",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="RUN_OR_EXPORT", help="run folders or generator exports to explore")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback: this machine only)")
    p.add_argument("--port", type=port, default=8765, help="port (0: any free one)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--device", default="cpu", help="device the explored generators run on")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this host name (a reverse proxy's); IP addresses and localhost always work",
    )
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("report", help="write RUN/report.html: curves, samples, metrics, alarms, checkpoints")
    p.add_argument(
        "run_dir",
        metavar="RUN",
        help="a run folder (its samples by input come from the best generator when it kept one), or RUN@last / "
        "RUN@STEP for another of its generators",
    )
    p.add_argument(
        "--out", type=output_path, default=None, help="where to write (default RUN/report.html, RUN/report-last.html..)"
    )
    p.set_defaults(run=cmd_report)

    p = sub.add_parser(
        "compare", help="one HTML page comparing runs: settings that differ, curves, metrics, grids, seed groups"
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more run folders")
    p.add_argument("--out", type=output_path, default="compare.html", help="where to write the page")
    p.set_defaults(run=cmd_compare)
