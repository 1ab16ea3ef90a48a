"""Report pages are Jinja2 templates (sim/templates): the markup lives there, every value is escaped
by the template, a value a page needs and was not given is an error, numbers are formatted the
project's way, and the templates ship with the package."""

from __future__ import annotations

import fnmatch
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from sim.report import TEMPLATES, Cell, environment, macro, render

ROOT = Path(__file__).resolve().parents[1]
#: the modules whose pages moved to templates: no markup or escaping of their own
RENDERING_MODULES = ("sim/report.py", "sim/analysis/validation.py", "sim/dashboard/compare.py")


def test_every_template_compiles():
    names = environment().list_templates()
    assert {"base.html.j2", "macros.html.j2", "run.html.j2", "comparison.html.j2", "sweep.html.j2", "sensitivity.html.j2",
            "calibration.html.j2", "validation.html.j2"} <= set(names)
    for name in names:
        environment().get_template(name)


@pytest.mark.parametrize("module", RENDERING_MODULES)
def test_the_pages_markup_is_in_templates_not_in_python(module):
    source = (ROOT / module).read_text()
    assert not re.findall(r"<(?:table|tr|td|th|h[1-6]|p|ul|li|img|div|span|details|pre)\b", source)
    assert "html.escape" not in source and "import html" not in source


def test_values_are_escaped_by_the_template():
    name = "<script>alert('x')</script> & co"
    page = render("base.html.j2", title=name, subtitle=name)
    assert "<script>" not in page and page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co") == 3
    table = macro("table", pd.DataFrame({"strategy": [name], "users": [1]}), css_class="cmp")
    assert "<script>" not in table and "&lt;script&gt;" in table and table.startswith("<table class='cmp'>")


def test_a_value_the_page_was_not_given_is_an_error():
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError, match="subtitle"):
        render("base.html.j2", title="t")


def test_tables_format_numbers_without_scientific_notation():
    frame = pd.DataFrame({"metric": ["big", "small", "tiny", "missing", "text"],
                          "value": [3.2e9, 0.000123, 1.5e-9, math.nan, "never within the horizon"]})
    table = macro("table", frame)
    cells = re.findall(r"<td>([^<]*)</td>", table)[1::2]
    assert cells == ["3,200,000,000", "0.0001", "0", "–", "never within the horizon"]
    assert not re.search(r"\de[+-]\d", table)
    assert macro("table", pd.DataFrame({"share": [0.1234]}), formats={"share": "{:.1%}"}).count("<td>12.3%</td>") == 1


def test_an_interval_cell_leaves_out_an_unknown_interval():
    assert macro("ci", Cell(5.0, 4.0, 6.5, "{:.1f}")) == "5.0 <span class='ci'>[4.0, 6.5]</span>"
    assert macro("ci", Cell(1234.0)) == "1,234"
    assert macro("ci", Cell(2.0, math.nan, math.nan, None, "1 of 3 runs have a value")) == "2 <span class='ci'>(1 of 3 runs have a value)</span>"


def test_the_templates_ship_with_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["sim"]
    files = [p.relative_to(TEMPLATES.parent).as_posix() for p in TEMPLATES.iterdir() if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pattern) for pattern in data) for f in files)


def test_importing_sim_does_not_import_jinja2():
    code = "import sys, sim, sim.report; assert 'jinja2' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
