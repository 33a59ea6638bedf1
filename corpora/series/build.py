"""Build corpora/series from the CSV files that two PyPI wheels ship (neither is a seqkit dependency):

    python corpora/series/build.py [--wheels DIR]

  seattle-weather.csv  vega_datasets' Seattle daily weather 2012-2015, with a column `rain` added
  sunspots.csv         statsmodels' yearly sunspot numbers 1700-2008

Without --wheels the two wheels are downloaded with pip (--no-deps, wheels only) into a temporary folder;
nothing is installed. With --wheels DIR, DIR must hold exactly one wheel of each package (e.g. from
`pip download --no-deps -d DIR vega_datasets statsmodels`). The files are read straight out of the wheel
zips. Writes the two CSV files (header line, LF line endings) and README.md; a rebuild from the same wheels
is byte-identical.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import email.parser
import io
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("vega_datasets", "statsmodels")
SUNSPOTS_MEMBER = "statsmodels/datasets/sunspots/sunspots.csv"
SUNSPOTS_DOCS = "statsmodels/datasets/sunspots/data.py"
WEATHER_COLUMNS = ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]
WEATHER_KINDS = {"drizzle", "fog", "rain", "snow", "sun"}
FIRST_DAY, LAST_DAY = datetime.date(2012, 1, 1), datetime.date(2015, 12, 31)
FIRST_YEAR, LAST_YEAR = 1700, 2008


def check(condition: bool, message: str) -> None:
    """An assertion that `python -O` keeps."""
    if not condition:
        raise SystemExit(f"build.py: {message}")


class Wheel:
    """One wheel, read with zipfile: its name, version, and members."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path)
        metadata = [n for n in self.zip.namelist() if n.endswith(".dist-info/METADATA")]
        check(len(metadata) == 1, f"{path.name}: {len(metadata)} METADATA files")
        fields = email.parser.Parser().parsestr(self.text(metadata[0]), headersonly=True)
        self.name, self.version = fields["Name"], fields["Version"]
        licence = fields.get("License-Expression") or (fields.get("License") or "").split("\n")[0]
        self.license = licence.strip() or "(none given)"

    def text(self, member: str) -> str:
        return self.zip.read(member).decode("utf-8")

    def members(self, suffix: str) -> list[str]:
        return [n for n in self.zip.namelist() if n.endswith(suffix)]


def find_wheels(folder: Path) -> dict[str, Wheel]:
    wheels = {}
    for package in PACKAGES:
        paths = sorted(folder.glob(f"{package}-*.whl"))
        check(len(paths) == 1, f"{folder}: {len(paths)} {package} wheels, want exactly one")
        wheels[package] = Wheel(paths[0])
    return wheels


def download(folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    subprocess.run([*command, "-d", str(folder), *PACKAGES], check=True)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def number(cell: str, where: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise SystemExit(f"build.py: {where}: {cell!r} is not a number") from None


# --- Seattle weather


def weather_member(wheel: Wheel) -> str:
    """The CSV's path in the wheel, from the package's own index of bundled files."""
    index = wheel.members("vega_datasets/local_datasets.json")
    check(len(index) == 1, f"{wheel.path.name}: no local_datasets.json")
    member = "vega_datasets/" + json.loads(wheel.text(index[0]))["seattle-weather"]
    check(member in wheel.zip.namelist(), f"{wheel.path.name}: no {member}")
    return member


def weather_description(wheel: Wheel) -> str:
    info = json.loads(wheel.text("vega_datasets/dataset_info.json"))
    return info["seattle-weather"]["description"]


def seattle(text: str) -> tuple[list[str], list[list[str]]]:
    check("\r" not in text, "seattle-weather.csv has CR line endings")
    rows = list(csv.reader(io.StringIO(text)))
    check(rows[0] == WEATHER_COLUMNS, f"seattle-weather.csv header {rows[0]}")
    body = rows[1:]
    days = (LAST_DAY - FIRST_DAY).days + 1
    check(len(body) == days == 1461, f"seattle-weather.csv: {len(body)} rows, want {days}")
    for i, row in enumerate(body):
        where = f"seattle-weather.csv row {i + 1}"
        check(len(row) == len(WEATHER_COLUMNS) and all(cell.strip() for cell in row), f"{where}: {row}")
        day = datetime.datetime.strptime(row[0], "%Y/%m/%d").date()
        check(day == FIRST_DAY + datetime.timedelta(days=i), f"{where}: date {row[0]}, not the next day")
        for column, cell in zip(WEATHER_COLUMNS[1:5], row[1:5], strict=True):
            number(cell, f"{where} {column}")
        check(row[5] in WEATHER_KINDS, f"{where}: weather {row[5]!r}")
    check(all(number(row[1], "precipitation") >= 0 for row in body), "negative precipitation")
    return [*WEATHER_COLUMNS, "rain"], [[*row, "yes" if float(row[1]) > 0 else "no"] for row in body]


# --- sunspots


def docs_strings(source: str) -> dict[str, str]:
    """The module-level string constants of statsmodels' data.py (read with ast, not imported)."""
    module = ast.parse(source)
    found = {"TITLE": (ast.get_docstring(module) or "").strip()}  # data.py sets TITLE = __doc__
    for node in module.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value.strip()
    return found


def sunspots(text: str) -> tuple[list[str], list[list[str]]]:
    check("\r" not in text, "sunspots.csv has CR line endings")
    rows = list(csv.reader(io.StringIO(text)))
    check(rows[0] == ["YEAR", "SUNACTIVITY"], f"sunspots.csv header {rows[0]}")
    body = []
    for i, (year, activity) in enumerate(rows[1:]):
        where = f"sunspots.csv row {i + 1}"
        value = number(year, where)
        check(value == int(value), f"{where}: year {year!r}")
        check(number(activity, where) >= 0, f"{where}: negative {activity!r}")
        body.append([str(int(value)), activity])
    years = [int(row[0]) for row in body]
    check(years == list(range(FIRST_YEAR, LAST_YEAR + 1)), "sunspots.csv: years not 1700..2008, one each")
    check(len(body) == 309, f"sunspots.csv: {len(body)} rows")
    return ["year", "sunactivity"], body


# --- README


def stats(rows: list[list[str]], column: int) -> str:
    values = [float(row[column]) for row in rows]
    return f"{min(values):g} | {statistics.fmean(values):.2f} | {max(values):g}"


def quote(text: str) -> str:
    return " ".join(text.split())


def write_readme(
    wheels: dict[str, Wheel], weather: list[list[str]], spots: list[list[str]], docs: dict[str, str]
) -> None:
    vega, sm = wheels["vega_datasets"], wheels["statsmodels"]
    member = weather_member(vega)
    rain = Counter(row[6] for row in weather)
    kinds = Counter(row[5] for row in weather)
    by_kind = {kind: Counter(row[6] for row in weather if row[5] == kind) for kind in sorted(kinds)}
    years = Counter(row[0][:4] for row in weather)
    L: list[str] = []
    a = L.append
    a("# series: two public time series for forecasting and sequence classification")
    a("")
    a("Generated by `build.py` in this directory; do not edit by hand.")
    a("")
    a("## Files")
    a("")
    a("| file | rows | content |")
    a("| --- | ---: | --- |")
    a(f"| `seattle-weather.csv` | {len(weather):,} | Seattle daily weather, {FIRST_DAY} to {LAST_DAY} |")
    a(f"| `sunspots.csv` | {len(spots):,} | yearly sunspot numbers, {FIRST_YEAR} to {LAST_YEAR} |")
    a("| `rain.toml`, `temperature.toml`, `sunspots.toml` | | the `make demo-classify` configs |")
    a("| `build.py` | | the rebuild script (also writes this README) |")
    a("")
    a(
        "Plain CSV, UTF-8, one header line, LF line endings, one row per time step in time order; rows "
        "do not count the header. Read from these wheels (downloaded with `pip download --no-deps`, read "
        "with `zipfile`, never installed):"
    )
    a("")
    a("| package | version | wheel | file read | package licence (METADATA) |")
    a("| --- | --- | --- | --- | --- |")
    a(f"| `{vega.name}` | {vega.version} | `{vega.path.name}` | `{member}` | {vega.license} |")
    a(f"| `{sm.name}` | {sm.version} | `{sm.path.name}` | `{SUNSPOTS_MEMBER}` | {sm.license} |")
    a("")
    a("The package licences cover the packages' code; what the packages say about the data is quoted below.")
    a("")
    a("## seattle-weather.csv")
    a("")
    a(
        f"{len(weather):,} days, {FIRST_DAY} to {LAST_DAY}, every day once and in order ("
        + ", ".join(f"{y}: {k}" for y, k in sorted(years.items()))
        + "), no empty cell (build.py checks all of this). The six columns of the vega_datasets file, "
        "unchanged and in order, then one added:"
    )
    a("")
    a("| column | meaning | unit | min | mean | max |")
    a("| --- | --- | --- | ---: | ---: | ---: |")
    a("| `date` | the day, `YYYY/MM/DD` as shipped | | | | |")
    a(f"| `precipitation` | daily precipitation | mm | {stats(weather, 1)} |")
    a(f"| `temp_max` | daily maximum temperature | °C | {stats(weather, 2)} |")
    a(f"| `temp_min` | daily minimum temperature | °C | {stats(weather, 3)} |")
    a(f"| `wind` | average daily wind speed | m/s | {stats(weather, 4)} |")
    kind_counts = ", ".join(f"`{k}` {n}" for k, n in sorted(kinds.items()))
    a(f"| `weather` | a label made by the Vega authors: {kind_counts} | | | | |")
    a(
        f"| `rain` | added here: `yes` when precipitation > 0, else `no`: {rain['yes']} yes "
        f"({rain['yes'] / len(weather):.1%}), {rain['no']} no | | | | |"
    )
    a("")
    a(
        'Units: the vega-datasets sources describe the file as daily weather records "with metric '
        'units"; its conversion script (`scripts/weather.py` in github.com/vega/vega-datasets) divides '
        "NOAA's GHCN-Daily PRCP (tenths of mm), TMAX / TMIN (tenths of °C) and AWND (tenths of m/s) by 10. "
        "The wheel itself states no units."
    )
    a("")
    a(
        "`weather` is not a function of precipitation in this copy, so it and `rain` do not agree day by "
        "day: "
        + ", ".join(f"`{k}` {c['yes']} yes / {c['no']} no" for k, c in by_kind.items())
        + ". The `rain.toml` task predicts tomorrow's `rain` from the four numeric columns."
    )
    a("")
    a(
        f"Provenance and licence, as `{vega.name}` {vega.version} states them "
        f'(`vega_datasets/dataset_info.json`): "{quote(weather_description(vega))}" The observations are '
        "NOAA's (National Climatic Data Center, now NCEI), a work of the US government, in the public "
        "domain; the `weather` label and the `rain` column are derived."
    )
    a("")
    a("## sunspots.csv")
    a("")
    a(
        f"{len(spots)} years, {FIRST_YEAR} to {LAST_YEAR}, every year once and in order (build.py checks). "
        "Columns renamed from `YEAR,SUNACTIVITY` to `year,sunactivity`, years written as integers; "
        "the values are unchanged."
    )
    a("")
    a("| column | meaning | unit | min | mean | max |")
    a("| --- | --- | --- | ---: | ---: | ---: |")
    a(f"| `year` | the calendar year | | {FIRST_YEAR} | | {LAST_YEAR} |")
    a(f"| `sunactivity` | the yearly (mean) sunspot number | sunspot number | {stats(spots, 1)} |")
    a("")
    a(f"Provenance and licence, as `{sm.name}` {sm.version} states them (`{SUNSPOTS_DOCS}`):")
    a("")
    a(f'- `TITLE`: "{quote(docs["TITLE"])}"')
    a(f'- `DESCRSHORT`: "{quote(docs["DESCRSHORT"])}"')
    a(f'- `SOURCE`: "{quote(docs["SOURCE"])}"')
    a(f'- `COPYRIGHT`: "{quote(docs["COPYRIGHT"])}"')
    a("")
    a(
        "The yearly sunspot numbers that NOAA's National Geophysical Data Center distributed are the "
        "International (Wolf / Zürich) sunspot number of the SIDC (Solar Influence Data Analysis Center, "
        "Royal Observatory of Belgium), in its original version 1 (e.g. 2008: 2.9). SIDC recalibrated the "
        "whole series in 2015 (version 2, roughly 1.4 to 1.7 times these values), so they do not match "
        "today's SILSO tables."
    )
    a("")
    a("## Rebuild")
    a("")
    a("```")
    a("python corpora/series/build.py                 # downloads the wheels into a temporary folder")
    a("pip download --no-deps -d /tmp/wheels vega_datasets statsmodels")
    a("python corpora/series/build.py --wheels /tmp/wheels")
    a("```")
    a("")
    a(
        "A newer wheel may change the README's wheel names; build.py stops if the data no longer pass "
        "its checks (columns, row counts, consecutive dates and years, no empty cells)."
    )
    (HERE / "README.md").write_text("\n".join(L) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", type=Path, help="a folder holding one wheel of each package")
    folder = parser.parse_args().wheels
    with tempfile.TemporaryDirectory() as temporary:
        if folder is None:
            folder = Path(temporary)
            download(folder)
        wheels = find_wheels(folder)
        vega, sm = wheels["vega_datasets"], wheels["statsmodels"]
        weather_header, weather = seattle(vega.text(weather_member(vega)))
        spots_header, spots = sunspots(sm.text(SUNSPOTS_MEMBER))
        docs = docs_strings(sm.text(SUNSPOTS_DOCS))
        check(
            "public domain" in docs.get("COPYRIGHT", ""),
            f"{SUNSPOTS_DOCS}: COPYRIGHT {docs.get('COPYRIGHT')}",
        )
        check("public-domain" in weather_description(vega), "dataset_info.json no longer says public-domain")
        write_csv(HERE / "seattle-weather.csv", weather_header, weather)
        write_csv(HERE / "sunspots.csv", spots_header, spots)
        write_readme(wheels, weather, spots, docs)
        for wheel in wheels.values():
            print(f"read {wheel.path.name} ({wheel.name} {wheel.version})")
    rain = sum(row[-1] == "yes" for row in weather)
    print(f"seattle-weather.csv: {len(weather)} rows, rain yes {rain} ({rain / len(weather):.1%})")
    print(f"sunspots.csv: {len(spots)} rows")


if __name__ == "__main__":
    main()
