"""Attacks on the Craft AI API (``/craft/<project>``) of a real server:

- access tokens: expired, forged (another key, a tampered payload, ``alg: none``), bound
  to another project, a viewer creating, a non-member refreshing: refused in the SDK's
  error shape, never served;
- the code folder is data: a slip out of the folder (``..``, absolute), links, devices,
  a decompression bomb, too many entries, duplicates and non-archives are refused
  (400) and nothing is created;
- names and inputs from the request are checked (ref names, undeclared file parts)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.server.config import ServerConfig
from conveyor.server.craft.tokens import PURPOSE, mint
from conveyor.server.keyring import Keyring
from tests.integration.server_support import Server

pytestmark = pytest.mark.integration
FUNCTION = b"def main():\n    return {}\n"


def url(server: Server, project: str = "demo") -> str:
    return f"{server.url}/craft/{project}/api/v1"


def access_token(server: Server, who: str = "member") -> str:
    answer = httpx.post(f"{url(server)}/auth/refresh", json={"refresh_token": server.tokens[who]})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def server_key(server: Server) -> bytes:
    return Keyring.load(ServerConfig(data=server.data).key_path).derive(PURPOSE)


def craft_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) >= {"name", "message", "request_id"}  # what SdkException reads
    return body


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def file_member(name: str, data: bytes = FUNCTION) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def create(server: Server, archive: bytes, name: str = "p", who: str = "member") -> httpx.Response:
    fields = {"pipeline_name": name, "function_path": "fn.py", "function_name": "main"}
    return httpx.post(
        f"{url(server)}/pipelines",
        data=fields,
        files={"step_file": ("step.tgz", archive)},
        headers={"Authorization": f"Bearer {access_token(server, who)}"},
        timeout=30,
    )


def listed(server: Server) -> list[Any]:
    answer = httpx.get(
        f"{url(server)}/pipelines",
        headers={"Authorization": f"Bearer {access_token(server)}"},
    )
    assert answer.status_code == 200
    items: list[Any] = answer.json()
    return items


def test_refresh_needs_an_api_token_of_a_member(server: Server) -> None:
    bad = httpx.post(f"{url(server)}/auth/refresh", json={"refresh_token": "not-a-token"})
    assert "not an API token" in craft_error(bad, 401)["message"]
    outsider = httpx.post(
        f"{url(server)}/auth/refresh", json={"refresh_token": server.tokens["outsider"]}
    )
    assert "not a member" in craft_error(outsider, 403)["message"]
    nowhere = httpx.post(
        f"{url(server, 'nowhere')}/auth/refresh", json={"refresh_token": server.tokens["member"]}
    )
    craft_error(nowhere, 404)


def test_an_api_token_is_not_an_access_token(server: Server) -> None:
    answer = httpx.get(
        f"{url(server)}/pipelines", headers={"Authorization": f"Bearer {server.tokens['lead']}"}
    )
    craft_error(answer, 401)


def test_expired_forged_and_tampered_tokens_are_refused(server: Server) -> None:
    key = server_key(server)
    expired = mint(key, "member", "demo", "lead", now=time.time() - 3600)
    forged = mint(b"k" * 32, "member", "demo", "lead")
    header, payload, signature = access_token(server, "viewer").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raised = base64.urlsafe_b64encode(json.dumps({**claims, "role": "lead"}).encode())
    tampered = f"{header}.{raised.decode().rstrip('=')}.{signature}"
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    unsigned = f"{none_header}.{payload}."
    reasons = {}
    for label, token in [
        ("expired", expired),
        ("forged", forged),
        ("tampered", tampered),
        ("unsigned", unsigned),
        ("junk", "a.b.c"),
    ]:
        answer = httpx.get(f"{url(server)}/pipelines", headers={"Authorization": f"Bearer {token}"})
        reasons[label] = craft_error(answer, 401)["message"]
    assert "expired" in reasons["expired"]
    assert "signature" in reasons["forged"]
    assert "signature" in reasons["tampered"]


def test_a_token_of_another_project_is_refused(server: Server) -> None:
    other = mint(server_key(server), "member", "other", "lead")
    answer = httpx.get(f"{url(server)}/pipelines", headers={"Authorization": f"Bearer {other}"})
    assert "another project" in craft_error(answer, 403)["message"]


def test_a_viewer_cannot_create_or_run(server: Server) -> None:
    answer = create(server, tar_gz([file_member("fn.py")]), who="viewer")
    assert "member role" in craft_error(answer, 403)["message"]
    run = httpx.post(
        f"{url(server)}/pipelines/p/run",
        data={"json_inputs": "{}"},
        headers={"Authorization": f"Bearer {access_token(server, 'viewer')}"},
    )
    craft_error(run, 403)
    assert listed(server) == []


def _bomb() -> bytes:
    info = tarfile.TarInfo("fn.py")
    info.size = 200 * 1024**2  # 200 MiB of zeros: a few hundred KiB gzipped
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as gz:
        gz.write(info.tobuf())
        chunk = bytes(1024**2)
        for _ in range(200):
            gz.write(chunk)
    return out.getvalue()


def _link(kind: bytes, name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


@pytest.mark.parametrize(
    ("label", "archive", "says"),
    [
        ("slip", tar_gz([file_member("fn.py"), file_member("../evil.py")]), "leaves"),
        ("deep slip", tar_gz([file_member("fn.py"), file_member("a/../../x")]), "leaves"),
        ("absolute", tar_gz([file_member("fn.py"), file_member("/etc/cron.d/x")]), "absolute"),
        ("symlink", tar_gz([file_member("fn.py"), _link(tarfile.SYMTYPE, "s", "/etc")]), "link"),
        ("hardlink", tar_gz([file_member("fn.py"), _link(tarfile.LNKTYPE, "h", "fn.py")]), "link"),
        ("fifo", tar_gz([file_member("fn.py"), _link(tarfile.FIFOTYPE, "f", "")]), "regular"),
        ("duplicate", tar_gz([file_member("fn.py"), file_member("fn.py")]), "twice"),
        ("many", tar_gz([file_member(f"f{i}") for i in range(10_001)]), "entries"),
        ("file and folder", tar_gz([file_member("fn.py"), file_member("fn.py/x")]), "both"),
        ("not an archive", b"PK\x03\x04 a zip file", "not a gzipped tar"),
    ],
)
def test_a_hostile_code_folder_is_refused(
    server: Server, label: str, archive: bytes, says: str
) -> None:
    body = craft_error(create(server, archive), 400)
    assert body["name"] == "InvalidCodeFolder", label
    assert says in body["message"], (label, body["message"])
    assert listed(server) == []
    assert not (server.data.parent / "evil.py").exists()


def test_a_decompression_bomb_is_refused(server: Server) -> None:
    body = craft_error(create(server, _bomb()), 400)
    assert "more than 64 MiB" in body["message"]


def test_names_and_parts_are_checked(server: Server) -> None:
    for name in ("../x", "A B", "-x", "x" * 70, "refs/heads/main"):
        answer = create(server, tar_gz([file_member("fn.py")]), name=name)
        assert "not a valid pipeline name" in craft_error(answer, 400)["message"]
    assert create(server, tar_gz([file_member("fn.py")])).status_code == 201
    token = access_token(server)
    answer = httpx.post(
        f"{url(server)}/pipelines/p/run",
        data={"json_inputs": "{}"},
        files={"../../escape": ("x", b"x")},
        headers={"Authorization": f"Bearer {token}"},
    )
    craft_error(answer, 400)
    unknown = httpx.get(
        f"{url(server)}/pipelines/p/../../../api/v1/projects",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert unknown.status_code in (401, 404)  # never the REST API with a Craft token


def test_not_served_parts_are_named_not_404_pages(server: Server, tmp_path: Path) -> None:
    token = access_token(server)
    for path, named in [
        ("deployments/d", "Deployments"),
        ("data-store/list", "Data store"),
        ("environment-variables", "Environment variables"),
        ("pipeline-templates", "Pipeline templates"),
        ("resource-metrics?start_date=1", "Resource metrics"),
    ]:
        answer = httpx.get(f"{url(server)}/{path}", headers={"Authorization": f"Bearer {token}"})
        body = craft_error(answer, 501)
        assert named in body["message"], path


def test_a_body_over_the_craft_cap_is_refused_before_it_is_read(server: Server) -> None:
    archive = tar_gz([file_member("fn.py")]) + b"\0" * (33 * 1024**2)
    answer = create(server, archive)
    assert answer.status_code == 413
    assert answer.json()["name"] == "PayloadTooLarge"  # what SdkException shows
    assert "limit for this route" in answer.json()["message"]
    assert listed(server) == []
