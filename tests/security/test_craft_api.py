"""Attacks on the Craft AI API (``/craft/<project>``) of a real server:

- access tokens: expired, forged (another key, a tampered payload, ``alg: none``), bound
  to another project, a viewer creating, a non-member refreshing: refused in the SDK's
  error shape, never served;
- the code folder is data: a slip out of the folder (``..``, absolute), links, devices,
  a decompression bomb, too many entries, duplicates and non-archives are refused
  (400) and nothing is created;
- names and inputs from the request are checked (ref names, undeclared file parts);
- deployments: an endpoint token opens its own endpoint and results only (another
  deployment's and an unknown endpoint: the same 401), is never an SDK or API token,
  is shown to leads only; viewers and members cannot create, change or delete one; a
  call over the deployment's body limit is a 413."""

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


# ---- deployments and their endpoint tokens -----------------------------------------


def bearer(server: Server, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(server, who)}"}


def make_endpoint(server: Server, name: str) -> str:
    """An endpoint deployment of the pipeline ``p``, created by the lead; its token
    (shown to a lead right after creation, as the SDK's create_deployment reads it)."""
    body = {"pipeline_name": "p", "name": name, "mode": "elastic"}
    made = httpx.post(f"{url(server)}/endpoints", json=body, headers=bearer(server, "lead"))
    assert made.status_code in (200, 201), made.text
    got = httpx.get(f"{url(server)}/deployments/{name}", headers=bearer(server, "lead"))
    token: str = got.json()["endpoint_token"]
    assert token
    return token


def endpoint(server: Server, name: str) -> str:
    return f"{server.url}/craft/demo/endpoints/{name}"


def test_an_endpoint_token_opens_its_own_deployment_only(server: Server) -> None:
    assert create(server, tar_gz([file_member("fn.py")])).status_code == 201
    first, second = make_endpoint(server, "first"), make_endpoint(server, "second")
    for name, header in [
        ("second", f"EndpointToken {first}"),  # another deployment's token
        ("missing", f"EndpointToken {first}"),  # no deployment: the same answer
        ("second", f"Bearer {second}"),  # the right token, the wrong scheme
        ("second", "EndpointToken x"),
    ]:
        answer = httpx.post(endpoint(server, name), json={}, headers={"Authorization": header})
        assert "endpoint token" in craft_error(answer, 401)["message"]
    results = f"{server.url}/craft/demo/endpoints/v1/second/executions/abc"
    craft_error(httpx.get(results, params={"token": first}), 401)
    craft_error(httpx.get(f"{results}/outputs/total", params={"token": first}), 401)
    latest = httpx.get(
        f"{url(server)}/deployments/second/executions/latest", headers=bearer(server, "viewer")
    )
    assert latest.json() is None  # nothing ran


def test_a_viewer_or_member_cannot_create_change_or_see_a_token(server: Server) -> None:
    assert create(server, tar_gz([file_member("fn.py")])).status_code == 201
    body = {"pipeline_name": "p", "name": "ep", "mode": "elastic"}
    for who in ("viewer", "member"):
        answer = httpx.post(f"{url(server)}/endpoints", json=body, headers=bearer(server, who))
        assert "lead role" in craft_error(answer, 403)["message"]
    make_endpoint(server, "ep")
    for who in ("viewer", "member"):
        headers = bearer(server, who)
        change = httpx.patch(
            f"{url(server)}/deployments/ep", json={"is_enabled": False}, headers=headers
        )
        craft_error(change, 403)
        rotate = httpx.post(f"{url(server)}/endpoints/ep/generate-new-token", headers=headers)
        craft_error(rotate, 403)
        craft_error(httpx.delete(f"{url(server)}/deployments/ep", headers=headers), 403)
        seen = httpx.get(f"{url(server)}/deployments/ep", headers=headers).json()
        assert seen["endpoint_token"] is None and seen["is_enabled"] is True


def test_an_endpoint_token_is_not_an_api_token(server: Server) -> None:
    assert create(server, tar_gz([file_member("fn.py")])).status_code == 201
    token = make_endpoint(server, "ep")
    refresh = httpx.post(f"{url(server)}/auth/refresh", json={"refresh_token": token})
    craft_error(refresh, 401)
    for header in (f"Bearer {token}", f"EndpointToken {token}"):
        craft_error(httpx.get(f"{url(server)}/pipelines", headers={"Authorization": header}), 401)
        rest = httpx.get(
            f"{server.url}/api/v1/projects/demo/deployments", headers={"Authorization": header}
        )
        assert rest.status_code == 401


def test_an_endpoint_call_over_the_deployments_body_limit_is_refused(server: Server) -> None:
    assert create(server, tar_gz([file_member("fn.py")])).status_code == 201
    token = make_endpoint(server, "ep")
    answer = httpx.post(
        endpoint(server, "ep"),
        content=b'{"x": "' + b"y" * (2 * 1024**2) + b'"}',
        headers={"Authorization": f"EndpointToken {token}", "Content-Type": "application/json"},
    )
    assert "ep" in craft_error(answer, 413)["message"]
