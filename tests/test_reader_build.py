"""The schema reader's compiled build (launch/compile_reader.py, gateway/schema_model/compiled.py): used only when
built from exactly these sources for this interpreter, and then reading every file of the schema corpus (real
tools' output) exactly as the plain modules do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.schema_corpus import build, engines
from gateway.schema_model import compiled
from launch import compile_reader

ROOT = Path(__file__).resolve().parents[1]

# Prints, for each file named on the command line, everything the model says about it, and whether the
# compiled build was in use.
_DUMP = """
import dataclasses, json, sys
import gateway.schema_model as package
from gateway.schema_model import read_schema
def table(t):
    return {**{f.name: getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "foreign_keys"},
            "foreign_keys": [dataclasses.astuple(key) for key in t.foreign_keys]}
models = {}
for path in sys.argv[1:]:
    model = read_schema(open(path, encoding="utf-8").read())
    models[path] = {"tables": [table(t) for t in model.tables], "prompt": model.prompt_text,
                    "unreadable": [dataclasses.astuple(part) for part in model.unreadable]}
print(json.dumps({"compiled": package.COMPILED, "models": models}, default=list))
"""


def _package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "schema_model"
    shutil.copytree(compiled.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _write_manifest(build_dir: Path, package: Path) -> None:
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / compiled.MANIFEST).write_text(json.dumps(compiled.manifest_for(package)), encoding="utf-8")


def test_a_build_is_used_only_for_the_sources_it_was_built_from(tmp_path: Path) -> None:
    package = _package_copy(tmp_path)
    build_dir = tmp_path / "build"
    _write_manifest(build_dir, package)
    assert compiled.usable(build_dir, package)
    tables = package / "tables.py"
    tables.write_text(tables.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert not compiled.usable(build_dir, package)  # an edited module: the plain modules read


def test_a_build_for_another_interpreter_or_without_a_manifest_is_not_used(tmp_path: Path) -> None:
    package = _package_copy(tmp_path)
    build_dir = tmp_path / "build"
    assert not compiled.usable(build_dir, package)  # nothing built
    manifest = compiled.manifest_for(package)
    build_dir.mkdir()
    (build_dir / compiled.MANIFEST).write_text(json.dumps({**manifest, "python": "cpython-399"}), encoding="utf-8")
    assert not compiled.usable(build_dir, package)
    (build_dir / compiled.MANIFEST).write_text("{not json", encoding="utf-8")
    assert not compiled.usable(build_dir, package)


def test_pure_mode_leaves_the_search_path_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _write_manifest(tmp_path, compiled.PACKAGE)
    monkeypatch.setenv("SQLGATE_READER_BUILD", str(tmp_path))
    monkeypatch.setenv("SQLGATE_READER_PURE", "1")
    monkeypatch.setattr(sys, "path", list(sys.path))  # use() puts the build's runtime module on it
    path: list[str] = []
    assert not compiled.use(path)
    assert path == []
    monkeypatch.delenv("SQLGATE_READER_PURE")
    assert compiled.use(path)
    assert path == [str(tmp_path / "gateway" / "schema_model")]


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    folder = tmp_path_factory.mktemp("reader-build-corpus")
    with engines() as servers:
        files = build(folder, servers)
    paths = []
    for index, corpus_file in enumerate(files):
        path = folder / f"{index}.sql"
        path.write_text(corpus_file.text, encoding="utf-8")
        paths.append(path)
    yield paths


def _read_all(paths: list[Path], **env: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _DUMP, *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, check=True, timeout=300)
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_the_compiled_reader_reads_the_corpus_exactly_as_the_plain_one(tmp_path: Path,
                                                                       corpus_files: list[Path]) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the reader runs as plain Python (Debian: apt-get install gcc)")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        pytest.skip("no Python headers for this interpreter: the reader runs as plain Python (python3-dev)")
    build_dir = tmp_path / "reader"
    compile_reader.build(build_dir)
    assert compiled.usable(build_dir)
    assert len(list((build_dir / "gateway" / "schema_model").glob("*.so"))) == len(compiled.MODULES)
    with_build = _read_all(corpus_files, SQLGATE_READER_BUILD=str(build_dir))
    plain = _read_all(corpus_files, SQLGATE_READER_PURE="1")
    assert with_build["compiled"] is True
    assert plain["compiled"] is False
    assert with_build["models"] == plain["models"]
    assert compile_reader.main(["--out", str(build_dir)]) == 0  # current: nothing rebuilt
