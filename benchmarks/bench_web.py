#!/usr/bin/env python3
"""Benchmark ``mprviewer serve`` in a real browser and write the "In a browser" section of
BENCHMARKS.md.

A benchmark, not a test: nothing fails on a slow number. It starts the real command on a
free loopback port with the demo study, drives Debian's chromium with playwright at
1280x800, and measures:

- first page load: from navigating to the tokenised address to the demo's four views
  painted (the session process is forked, the demo series loaded and rendered);
- key press to new picture: ArrowUp pressed in the page (a real input event) to the
  axial view's new image decoded and painted (the next animation frame), median of many
  presses, with one reader and with four readers scrolling at once;
- memory: proportional set size (PSS, shared pages split between sharers) of the whole
  server with 1 and with 5 open demo sessions, per extra session.

    ./scripts/setup && .venv/bin/python benchmarks/bench_web.py          # ~1 minute
    .venv/bin/python benchmarks/bench_web.py --presses 20 --no-write     # print only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
BEGIN, END = "<!-- bench_web:begin -->", "<!-- bench_web:end -->"

# Installed once per page: records, for each new image of the axial view, the time from
# the last key press (page.js stamps window.mprLastKey on keydown) to the frame after the
# image was decoded, i.e. when it is on screen.
OBSERVER = """
() => {
  window.mprSamples = [];
  const img = document.querySelector('[data-testid=view-axial] img');
  new MutationObserver(() => {
    const pressed = window.mprLastKey;
    if (pressed === undefined || window.mprCounted === pressed) return;
    window.mprCounted = pressed;
    img.decode().catch(() => {}).then(() => requestAnimationFrame(() => {
      window.mprSamples.push(performance.now() - pressed);
    }));
  }).observe(img, { attributes: true, attributeFilter: ['src'] });
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pss_kib(pid: int) -> int:
    """Proportional set size of a process in KiB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


WAIT_DEMO = (
    "() => { const s = document.querySelector('[data-testid=slice-axial]');"
    " const imgs = [...document.querySelectorAll('.mpr-view img')];"
    " return s && s.textContent.trim() === '64' && imgs.length === 4 &&"
    " imgs.every(i => i.complete && i.naturalWidth > 0); }"
)


async def open_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    started = time.perf_counter()
    await page.goto(url)
    # The demo is shown when the axial view says its centre slice and has a picture.
    try:
        await page.wait_for_function(WAIT_DEMO)
    except Exception:
        status = await page.evaluate(
            "() => document.querySelector('[data-testid=status]')?.textContent")
        print(f"the demo did not show; the page says {status!r}", file=sys.stderr)
        print("\n".join(problems[-30:]), file=sys.stderr)
        print(await page.content(), file=sys.stderr)
        raise
    loaded = time.perf_counter() - started
    await page.click("[data-testid=view-axial]")
    await asyncio.sleep(0.5)
    await page.evaluate(OBSERVER)
    return context, page, loaded


async def scroll(page, presses: int, pause: float) -> list[float]:
    """Press ArrowUp (then ArrowDown, staying inside the volume) and collect the samples."""
    for n in range(presses):
        key = "ArrowUp" if (n // 20) % 2 == 0 else "ArrowDown"
        await page.keyboard.press(key)
        try:
            await page.wait_for_function(f"() => window.mprSamples.length >= {n + 1}",
                                         timeout=10_000)
        except Exception:
            print("  a frame did not arrive within 10 s", file=sys.stderr)
        await asyncio.sleep(pause)
    return list(await page.evaluate("() => window.mprSamples"))


async def run(presses: int, pause: float, home: Path) -> dict:
    from playwright.async_api import async_playwright

    port = free_port()
    env = dict(os.environ, MPRVIEWER_HOME=str(home))
    env.pop("DISPLAY", None)  # EGL, as on a server
    server = subprocess.Popen(
        [sys.executable, "-m", "mprviewer", "serve", "demo", "--port", str(port),
         "--close-grace", "1"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    results: dict = {}
    try:
        line = server.stdout.readline()
        url = re.search(r"(http://\S+)", line).group(1)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # Warm the demo cache and the forkserver, then measure a fresh tab.
            context, _page, _ = await open_page(browser, url)
            await context.close()
            await asyncio.sleep(1.0)
            loads = []
            for _ in range(3):
                context, page, loaded = await open_page(browser, url)
                loads.append(loaded)
                await context.close()
            results["first_load"] = loads
            server_pids = lambda: tree(server.pid)  # noqa: E731
            await asyncio.sleep(3.0)  # closed tabs' processes end after the grace period
            context, page, _ = await open_page(browser, url)
            one_pss = sum(pss_kib(pid) for pid in server_pids())
            results["one"] = await scroll(page, presses, pause)
            others = [await open_page(browser, url) for _ in range(3)]
            pages = [page, *[o[1] for o in others]]
            await page.evaluate("() => { window.mprSamples = []; }")
            samples = await asyncio.gather(*(scroll(pg, presses, pause) for pg in pages))
            results["four"] = [s for group in samples for s in group]
            extra = await open_page(browser, url)
            five_pss = sum(pss_kib(pid) for pid in server_pids())
            results["pss_one_mib"] = one_pss / 1024
            results["pss_per_extra_mib"] = (five_pss - one_pss) / 4 / 1024
            for ctx in (context, *[o[0] for o in others], extra[0]):
                await ctx.close()
            await browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return results


def section(results: dict, presses: int) -> str:
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ms" if values else "n/a"

    def p90(values: list[float]) -> str:
        if len(values) < 5:
            return "n/a"
        return f"{sorted(values)[int(0.9 * (len(values) - 1))]:.0f} ms"

    load = os.getloadavg()
    loads = ", ".join(f"{v:.2f} s" for v in results["first_load"])
    return "\n".join([
        BEGIN,
        "## In a browser (`mprviewer serve`)",
        "",
        f"`benchmarks/bench_web.py`: the demo (256x256x128 CT) served on loopback, Debian's "
        f"chromium (headless, playwright) at 1280x800, trame-rca JPEG frames, no "
        f"multisampling. Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"(a shared 2-core machine: figures are noisy).",
        "",
        "| measure | median | 90th percentile | target |",
        "| --- | --- | --- | --- |",
        f"| key press to new axial picture painted, one reader ({len(results['one'])} "
        f"presses) | {med(results['one'])} | {p90(results['one'])} | < 100 ms |",
        f"| the same, four readers scrolling at once ({len(results['four'])} presses) | "
        f"{med(results['four'])} | {p90(results['four'])} | < 250 ms |",
        f"| first page load to the demo's four views painted (3 fresh tabs: {loads}) | "
        f"{statistics.median(results['first_load']):.2f} s | | < 3 s |",
        f"| memory (PSS) of the whole server with one demo session | "
        f"{results['pss_one_mib']:.0f} MiB | | |",
        f"| memory (PSS) per extra demo session | {results['pss_per_extra_mib']:.0f} MiB | | |",
        "",
        f"Presses are {presses} per reader, ArrowUp/ArrowDown in runs of 20, each after the "
        "previous picture arrived; the time runs from the keydown event in the page to the "
        "animation frame after the new image was decoded.",
        END,
    ])


def write(text: str, path: Path) -> None:
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=40, help="key presses per reader")
    parser.add_argument("--pause", type=float, default=0.05,
                        help="seconds between a picture and the next press")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as home:
        results = asyncio.run(run(args.presses, args.pause, Path(home)))
    text = section(results, args.presses)
    print(text)
    if not args.no_write:
        write(text, args.output)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
