"""The annotation round trip against a real Label Studio server on localhost.

One server per module (starting it migrates a fresh database: about a minute on 2 cores),
set up as ``docs/walkthrough.md`` says: local-files serving on, the document root a temporary
folder, each image folder a local-files storage *below* it, a user and API token created by the
environment. The tests import the task files that :func:`write_label_studio_tasks` writes,
fetch every image URL through the server, annotate through the REST API, and read the CSV,
JSON-MIN and JSON exports back with :func:`read_annotations`.

The server comes from ``AS3L_LABEL_STUDIO`` (a ``label-studio`` executable, e.g. of a venv of
its own: what ``.ci/run`` does; the test fails if it does not start), else from this
interpreter (``pip install -e ".[labelstudio]"``); without either the module is skipped.
"""

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.datasets import load_image_folder
from as3l_sklearn.selection import read_annotations, write_label_studio_tasks

pytestmark = pytest.mark.label_studio

SERVER_VARIABLE = "AS3L_LABEL_STUDIO"
START_TIMEOUT_S = 600  # migrating the database on a busy 2-core machine took 2 minutes
CLASSES = ["red", "green", "blue"]
COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
# names as cameras and people write them: a space, sub-folders, a non-ASCII letter
PHOTOS = {"IMG_0001.png": "red", "IMG 0002.png": "green", "batch2/IMG_0003.png": "blue",
          "batch2/IMG_0004.png": "red", "nested/old/scan_005.png": "green",
          "café_006.png": "blue"}
LABEL_CONFIG = ('<View><Image name="image" value="$image"/>'
                '<Choices name="choice" toName="image" choice="single">'
                + "".join(f'<Choice value="{name}"/>' for name in CLASSES)
                + "</Choices></View>")
# requests to the local server never go through a proxy of the environment
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _server_command():
    given = os.environ.get(SERVER_VARIABLE)
    if given:
        executable = shutil.which(given)
        if executable is None:
            pytest.fail(f"{SERVER_VARIABLE}={given!r} is not an executable label-studio")
        return [executable]
    if importlib.util.find_spec("label_studio") is not None:
        return [sys.executable, "-m", "label_studio.server"]
    pytest.skip("Label Studio is not installed: pip install -e '.[labelstudio]', or set "
                f"{SERVER_VARIABLE} to the label-studio executable of another venv")


@dataclass
class Server:
    url: str
    token: str
    document_root: Path

    def request(self, method, path, body=None):
        """``(status, bytes)`` of an authenticated request; HTTP errors are returned."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def api(self, method, path, body=None):
        status, content = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {content[:500]!r}"
        return json.loads(content)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_environment(document_root, token):
    # Label Studio reads LABEL_STUDIO_X before plain X (HOST, PORT, DEBUG, USERNAME ...)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LABEL_STUDIO_", "HEARTEX_"))}
    env.update({f"LABEL_STUDIO_{key}": value for key, value in {
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        "USERNAME": "as3l-test@localhost", "PASSWORD": secrets.token_hex(12),
        "USER_TOKEN": token, "HOST": "", "DEBUG": "false",
        # nothing leaves the machine: no error reports, analytics or version checks
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false", "CONVERTER_DOWNLOAD_RESOURCES": "false",
    }.items()})
    return env


def _wait_until_up(process, log, port):
    """The server's address once ``/health`` answers; fails with the log if it exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if process.poll() is not None:
            pytest.fail(f"Label Studio exited with status {process.returncode}:\n{text[-3000:]}")
        # it moves to another port when the one asked for was taken in between
        started = re.search(r"Starting development server at (http://[^/\s]+)/", text)
        if started:
            url = started.group(1)
            try:
                with _OPENER.open(url + "/health", timeout=10) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.5)
    pytest.fail(f"Label Studio did not answer within {START_TIMEOUT_S} s:\n"
                f"{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    command = _server_command()
    home = tmp_path_factory.mktemp("label-studio")
    document_root = home / "root"
    document_root.mkdir()
    token = secrets.token_hex(20)
    port = _free_port()
    log = home / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command + ["start", "--no-browser", "--data-dir", str(home / "data"),
                       "--internal-host", "127.0.0.1", "--port", str(port),
                       "--enable-legacy-api-token"],
            env=_server_environment(document_root, token), cwd=home, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT)
    try:
        yield Server(_wait_until_up(process, log, port), token, document_root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _write_photos(folder):
    """The PHOTOS as tiny PNGs (one colour per class); the pool's relative files, sorted."""
    for name, label in PHOTOS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 8, 3), COLOURS[label], dtype=np.uint8)).save(path)
    files = load_image_folder(folder, labels="none", return_X_y=False).files
    assert sorted(files) == sorted(PHOTOS)
    return list(files)


def _project_serving(server, title, folder):
    """A new image-classification project with a local-files storage for ``folder``."""
    project = server.api("POST", "/api/projects",
                         {"title": title, "label_config": LABEL_CONFIG})["id"]
    server.api("POST", "/api/storages/localfiles",
               {"project": project, "path": str(folder), "title": folder.name})
    return project


def _import(server, project, tasks_file):
    return server.api("POST", f"/api/projects/{project}/import",
                      json.loads(tasks_file.read_text(encoding="utf-8")))


def _tasks(server, project):
    tasks = server.api("GET", f"/api/tasks?project={project}&page_size=1000")
    return tasks["tasks"] if isinstance(tasks, dict) else tasks


def _annotate(server, task_id, label):
    server.api("POST", f"/api/tasks/{task_id}/annotations", {"result": [
        {"from_name": "choice", "to_name": "image", "type": "choices",
         "value": {"choices": [label]}}]})


def _exported_labels(server, project, export_type, folder, files):
    """The project's export of that type, saved as a browser would, read back by file."""
    status, content = server.request("GET", f"/api/projects/{project}/export"
                                            f"?exportType={export_type}")
    assert status == 200, f"{export_type} export: {status} {content[:500]!r}"
    suffix = ".csv" if export_type == "CSV" else ".json"
    export = folder / f"project-{project}-{export_type.lower()}{suffix}"
    export.write_bytes(content)
    return read_annotations(export, files=files, class_names=CLASSES).tolist()


def test_refuses_a_storage_equal_to_the_document_root(server):
    # why the task URLs name the images folder below the root, never the root itself
    project = server.api("POST", "/api/projects", {"title": "root", "label_config": LABEL_CONFIG})
    status, content = server.request("POST", "/api/storages/localfiles", {
        "project": project["id"], "path": str(server.document_root), "title": "root"})
    assert status == 400 and b"cannot be the same as LOCAL_FILES_DOCUMENT_ROOT" in content


def test_selection_served_labeled_and_exported(server, tmp_path):
    """Every task URL answers 200 with the image's own bytes; the labels given through the
    REST API come back exactly from the CSV, JSON-MIN and JSON exports."""
    photos = server.document_root / "photos"
    files = _write_photos(photos)
    tasks_file = write_label_studio_tasks(tmp_path / "label_studio_tasks.json", files,
                                          folder=photos)
    project = _project_serving(server, "selection", photos)
    assert _import(server, project, tasks_file)["task_count"] == len(files)
    tasks = _tasks(server, project)
    assert sorted(task["data"]["file"] for task in tasks) == sorted(files)
    for task in tasks:
        status, content = server.request("GET", task["data"]["image"])
        assert status == 200, f"{task['data']['image']}: {status}"
        assert content == (photos / task["data"]["file"]).read_bytes()

    skipped = files[2]  # a task the labeller leaves alone stays unlabeled
    for task in tasks:
        if task["data"]["file"] != skipped:
            _annotate(server, task["id"], PHOTOS[task["data"]["file"]])
    expected = [-1 if file == skipped else PHOTOS[file] for file in files]
    for export_type in ("CSV", "JSON_MIN", "JSON"):
        assert _exported_labels(server, project, export_type, tmp_path, files) == expected


def test_pool_tasks_carry_priors_and_the_persons_labels(server, tmp_path):
    """The pool task file: the person's labels as annotations (winning over a prior that says
    otherwise), the priors as predictions of every other image; the export keeps the
    person's labels and those given in Label Studio afterwards."""
    photos = server.document_root / "pool"
    files = _write_photos(photos)
    rng = np.random.default_rng(0)
    priors = rng.dirichlet(np.ones(len(CLASSES)), size=len(files))
    person = {files[0]: PHOTOS[files[0]], files[3]: PHOTOS[files[3]]}
    for file in person:  # the model disagrees with the person on these
        priors[files.index(file)] = [0.1 if c == person[file] else 0.45 for c in CLASSES]
    labels = [person.get(file, -1) for file in files]
    tasks_file = write_label_studio_tasks(tmp_path / "pool_tasks.json", files, priors=priors,
                                          classes=CLASSES, labels=labels, folder=photos)
    project = _project_serving(server, "pool", photos)
    imported = _import(server, project, tasks_file)
    assert (imported["task_count"], imported["annotation_count"],
            imported["prediction_count"]) == (len(files), len(person), len(files) - len(person))

    tasks = {task["data"]["file"]: task for task in _tasks(server, project)}
    predictions = server.api("GET", f"/api/predictions?project={project}")
    by_task = {prediction["task"]: prediction for prediction in predictions}
    for i, file in enumerate(files):
        task = tasks[file]
        assert server.request("GET", task["data"]["image"])[0] == 200
        if file in person:
            assert (task["total_annotations"], task["total_predictions"]) == (1, 0)
        else:
            prediction = by_task[task["id"]]
            assert prediction["model_version"] == "as3l-prior"
            assert prediction["score"] == pytest.approx(priors[i].max(), abs=1e-6)
            assert prediction["result"][0]["value"] == {
                "choices": [CLASSES[int(np.argmax(priors[i]))]]}

    expected = [person.get(file, -1) for file in files]
    assert _exported_labels(server, project, "JSON", tmp_path, files) == expected
    # one more image labeled in Label Studio joins the person's earlier labels
    _annotate(server, tasks[files[1]]["id"], PHOTOS[files[1]])
    expected[1] = PHOTOS[files[1]]
    for export_type in ("CSV", "JSON_MIN", "JSON"):
        assert _exported_labels(server, project, export_type, tmp_path, files) == expected
