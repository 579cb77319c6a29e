"""End-to-end: the HTML report, opened in a real headless Chromium, shows every figure and table.

The tiny workflow runs once, `snakemake --report` builds results/report.html, and Playwright
drives Debian's chromium (no browser download: `executable_path` points at it) through the
report as a reader would: each category in the menu, each subcategory, and each row of its
table, where the (i) button opens the item's description and its eye button shows it. A figure
counts as shown when the <img> in the content pane has loaded (naturalWidth > 0), holds exactly
the bytes of the PNG in results/, and takes up room on the screen. Tables reach the report as
small HTML pages (Snakemake's report would only offer a .tsv for download); a page counts as
shown when the content pane's iframe shows its title and a table. Every item and every
results table gets a screenshot, into the folder REPORT_SCREENSHOTS names (made if missing),
else into pytest's tmp dir.

Needs `pip install playwright` (requirements.txt) and `apt-get install chromium`; without
either, the tests skip. REPORT_CHROMIUM overrides the browser binary.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_workflow

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="needs Playwright: pip install playwright==1.65.2 (no `playwright install`: "
    "the test drives Debian's chromium)",
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1100}
TIMEOUT_MS = 15_000
# the report's content pane: ContentDisplay, the flex row's <div class="grow ..."> beside the <nav>
CONTENT_IMG = "#app > div > div.grow img"
CONTENT_FRAME = "#app > div > div.grow iframe"
# what is wrong with the figure in the content pane; "" once it shows the file's bytes, loaded
IMAGE_STATE = """([selector, b64]) => {
    const img = document.querySelector(selector);
    if (img === null) return "the content pane shows no image";
    if (!img.src.endsWith("base64," + b64)) return "the image shown is not this file";
    if (!img.complete) return "the image is still loading";
    if (img.naturalWidth === 0) return "the image does not decode (naturalWidth 0)";
    return "";
}"""
# every path the rules hand to report(...), e.g. "results/{model}/figures/gradcam.png"
REPORT_CALL = re.compile(r'report\(\s*"([^"]+)"')
MENU_ENTRIES = {"Workflow", "Statistics", "About"}


def chromium_binary() -> str:
    chromium = os.environ.get("REPORT_CHROMIUM") or shutil.which("chromium")
    if not chromium or not os.access(chromium, os.X_OK):
        pytest.skip(
            "needs Debian's chromium: apt-get install chromium "
            "(or point REPORT_CHROMIUM at a Chromium binary)"
        )
    return chromium


@dataclass
class Shown:
    """One report item as the browser showed it."""

    path: str
    category: str
    subcategory: str  # "" where the category has just one (the report then skips that level)
    labels: list[str]  # the row's label cells
    kind: str = ""  # "figure" or "table"
    caption: str = ""
    screenshot: Path | None = None
    natural_size: tuple[int, int] | None = None
    displayed_size: tuple[float, float] | None = None
    same_bytes: bool = False
    problems: list[str] = field(default_factory=list)


def exactly(text: str) -> re.Pattern:
    return re.compile(f"^{re.escape(text)}$")


def shot_name(*parts: str) -> str:
    """A screenshot's file name: "toy__figures__gradcam.png", "menu__toy__Neurons.png"."""
    name = "__".join(re.sub(r"[^\w.-]+", "_", p) for p in parts if p)
    return name if name.endswith(".png") else name + ".png"


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def registered_outputs(work: Path) -> set[str]:
    """The run's files that some rule registers with report(...)."""
    found = set()
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for pattern in REPORT_CALL.findall(smk.read_text()):
            glob = re.sub(r"\{[^}]*\}", "*", pattern)
            found |= {p.relative_to(work).as_posix() for p in work.glob(glob)}
    return found


def produced_figures(work: Path) -> set[str]:
    """Every figure the run drew: each model's figures/ and the comparison across models."""
    pngs = [*work.glob("results/*/figures/*.png"), *work.glob("results/comparison/*.png")]
    return {p.relative_to(work).as_posix() for p in pngs}


def screenshot_dir(tmp_path_factory) -> Path:
    wanted = os.environ.get("REPORT_SCREENSHOTS")
    if wanted:
        folder = Path(wanted).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screens")


class ReportReader:
    """Walks the report's menu like a reader and records what each item shows."""

    def __init__(self, page, work: Path, screens: Path):
        self.page = page
        self.work = work
        self.screens = screens
        self.nav = page.locator("nav").first  # the sidebar
        self.crumbs = self.nav.locator("nav ol li a")
        self.items = self.nav.locator("div.p-3 > ul > li > a")
        self.shown: dict[str, Shown] = {}

    def expect_crumb(self, text: str):
        sync_api.expect(self.crumbs.last).to_have_text(text)

    def menu_names(self) -> list[str]:
        sync_api.expect(self.items.first).to_be_visible()
        return [self.items.nth(i).inner_text().strip() for i in range(self.items.count())]

    def read(self):
        categories = [name for name in self.menu_names() if name not in MENU_ENTRIES]
        assert categories, "the report's menu lists no results"
        for category in categories:
            self.items.filter(has_text=exactly(category)).click()
            self.expect_crumb(category)
            if self.nav.locator("table").count():  # a single subcategory opens directly
                self.read_table(category, "")
            else:
                for sub in self.menu_names():
                    self.items.filter(has_text=exactly(sub)).click()
                    self.expect_crumb(sub)
                    self.read_table(category, sub)
                    self.crumbs.filter(has_text=exactly(category)).click()
                    self.expect_crumb(category)
            self.crumbs.first.click()  # home
            sync_api.expect(self.items.first).to_be_visible()

    def read_table(self, category: str, subcategory: str):
        rows = self.nav.locator("table tbody tr")
        sync_api.expect(rows.first).to_be_visible()
        # A label with two values, each on half the items, becomes a toggle above the table
        # (e.g. figure: "S against D" | "S against M"): each row is shown once per value.
        toggle = self.nav.locator("fieldset label")
        self.nav.screenshot(path=self.screens / shot_name("menu", category, subcategory))
        choices = [toggle.nth(i).inner_text().strip() for i in range(toggle.count())] or [None]
        for choice in choices:
            for i in range(rows.count()):
                self.read_row(category, subcategory, rows, i, choice)

    def read_row(self, category: str, subcategory: str, rows, i: int, choice: str | None):
        if choice is not None:  # the table forgets the toggle whenever it is left
            self.nav.locator("fieldset label").filter(has_text=exactly(choice)).click()
            sync_api.expect(self.nav.locator("fieldset input:checked")).to_have_value(choice)
        row = rows.nth(i)
        cells = row.locator("td")
        labels = [cells.nth(j).inner_text().strip() for j in range(cells.count() - 1)]
        labels += [choice] if choice is not None else []
        back = self.crumbs.last.inner_text()
        row.locator("a[iconname='information-circle']").click()
        sync_api.expect(self.crumbs.last).not_to_have_text(back)
        path = self.crumbs.last.inner_text().strip()
        item = Shown(path, category, subcategory, labels)
        self.shown[path] = item
        captions = self.nav.locator("li.prose")
        item.caption = captions.first.inner_text().strip() if captions.count() else ""
        try:
            self.show(item)
        except (sync_api.Error, AssertionError) as err:  # timeouts too: record, go on
            item.problems.append(f"{type(err).__name__}: {str(err).splitlines()[0]}")
        self.crumbs.nth(self.crumbs.count() - 2).click()  # back to the table
        sync_api.expect(rows.first).to_be_visible()

    def show(self, item: Shown):
        file = self.work / item.path
        data = file.read_bytes() if file.is_file() else b""
        if not data:
            item.problems.append(f"{item.path} is not a file of the run")
        eye = self.nav.locator("a[iconname='eye']")
        shot = self.screens / shot_name(*Path(item.path).parts[1:])
        if item.path.endswith(".html"):  # a table page: shown in an iframe
            item.kind = "page"
            eye.click()
            heading = re.search(r"<h1>(.*?)</h1>", data.decode(errors="replace"))
            frame = self.page.frame_locator(CONTENT_FRAME)
            try:
                sync_api.expect(frame.locator("h1")).to_have_text(
                    html.unescape(heading.group(1)) if heading else "", timeout=TIMEOUT_MS
                )
                item.same_bytes = frame.locator("table, pre").count() > 0
            finally:
                self.page.screenshot(path=shot)
        elif eye.get_attribute("download") is not None:  # not displayed: a download link
            item.kind = "table"
            with self.page.expect_download(timeout=TIMEOUT_MS) as download:
                eye.click()
            item.same_bytes = Path(download.value.path()).read_bytes() == data
            self.nav.screenshot(path=shot)
        else:
            item.kind = "figure"
            eye.click()
            try:
                self.wait_for_image(item, data)
            finally:  # a screenshot of a figure that failed helps most
                self.page.screenshot(path=shot)
        item.screenshot = shot

    def wait_for_image(self, item: Shown, data: bytes):
        arg = [CONTENT_IMG, base64.b64encode(data).decode()]
        try:
            self.page.wait_for_function(f"a => ({IMAGE_STATE})(a) === ''", arg=arg)
        except sync_api.TimeoutError:
            item.problems.append(self.page.evaluate(IMAGE_STATE, arg))
            return
        img = self.page.locator(CONTENT_IMG)
        size = img.evaluate(
            "img => [img.naturalWidth, img.naturalHeight,"
            " img.getBoundingClientRect().width, img.getBoundingClientRect().height]"
        )
        item.natural_size = (size[0], size[1])
        item.displayed_size = (size[2], size[3])
        item.same_bytes = True
        sync_api.expect(img).to_be_in_viewport()


# make test-slow (pytest.ini): the whole tiny workflow, its report and a browser walk
WHOLE_RUN = pytest.mark.slow


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> Path:
    """The tiny workflow and its report, built once for this module."""
    chromium_binary()  # skip before the (minute-long) run when there is no browser
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    work = tmp_path_factory.mktemp("report")
    run_workflow(work, config)
    run_workflow(work, config, "--report", "results/report.html")
    return work


@dataclass
class Browsed:
    shown: dict[str, Shown]  # report path -> what the browser showed
    errors: list[str]  # uncaught exceptions in the page
    outside: list[str]  # requests that left the file (the report must be self-contained)
    screens: Path


@pytest.fixture(scope="module")
def browsed(report_run, tmp_path_factory) -> Browsed:
    """One walk through the report in headless Chromium, a screenshot of every item."""
    chromium = chromium_binary()
    result = Browsed({}, [], [], screenshot_dir(tmp_path_factory))
    with sync_api.sync_playwright() as pw:
        # launch() gives the browser a fresh temporary profile (--user-data-dir)
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.on("pageerror", lambda err: result.errors.append(str(err)))
            page.on(
                "request", lambda req: leaves_the_file(req.url) and result.outside.append(req.url)
            )
            page.goto((report_run / "results" / "report.html").as_uri())
            page.screenshot(path=result.screens / "00_home.png")
            reader = ReportReader(page, report_run, result.screens)
            reader.read()
            result.shown = reader.shown
        finally:
            browser.close()
    return result


def leaves_the_file(url: str) -> bool:
    return url.split(":")[0] not in ("file", "data", "blob", "about")


def where(item: Shown) -> str:
    return " > ".join(x for x in (item.category, item.subcategory, *item.labels) if x)


@WHOLE_RUN
def test_report_has_every_registered_figure_and_table(report_run, browsed):
    figures = produced_figures(report_run)
    registered = registered_outputs(report_run)
    assert figures, "the tiny run drew no figures"
    assert any(p.endswith(".html") for p in registered), "no table is registered with report()"
    assert figures <= registered, f"figures not registered with report(): {figures - registered}"
    shown = browsed.shown
    assert not registered - set(shown), (
        f"not reachable through the report's menus: {sorted(registered - set(shown))}"
    )
    assert not set(shown) - registered, f"unexpected in the report: {set(shown) - registered}"
    for path, item in shown.items():
        assert item.category and any(item.labels), f"{path}: listed as {where(item)!r}"
        assert item.screenshot and item.screenshot.is_file(), f"{path}: no screenshot"


@WHOLE_RUN
def test_every_figure_is_displayed(report_run, browsed):
    figures = sorted(p for p in browsed.shown if p.endswith(".png"))
    assert figures
    failed = []
    for path in figures:
        item = browsed.shown[path]
        if item.problems or item.kind != "figure" or not item.same_bytes:
            failed.append(f"{path} ({where(item)}): {item.problems or 'not shown as an image'}")
        elif item.natural_size != png_size(report_run / path):
            failed.append(f"{path}: shown at natural size {item.natural_size}")
        elif item.displayed_size[0] < 100 or item.displayed_size[1] < 50:
            failed.append(f"{path}: displayed {item.displayed_size} px")
    assert not failed, f"screenshots in {browsed.screens}:\n" + "\n".join(failed)


@WHOLE_RUN
def test_every_table_page_is_displayed(browsed):
    # tables reach the report as small HTML pages, shown in an iframe
    pages = sorted(p for p in browsed.shown if p.endswith(".html"))
    assert pages
    failed = [
        f"{path} ({where(item)}): {item.problems or 'no table on the page'}"
        for path, item in ((p, browsed.shown[p]) for p in pages)
        if item.problems or item.kind != "page" or not item.same_bytes
    ]
    assert not failed, "\n".join(failed)


@WHOLE_RUN
def test_every_item_has_a_caption(browsed):
    short = {path: item.caption for path, item in browsed.shown.items() if len(item.caption) < 40}
    assert not short, f"missing or stub captions: {short}"


@WHOLE_RUN
def test_report_is_self_contained_and_raises_no_errors(browsed):
    assert not browsed.outside, f"the report fetches from outside itself: {browsed.outside}"
    assert not browsed.errors, browsed.errors
