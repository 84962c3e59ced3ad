"""Pachyderm 2.x pipeline spec fields: their protobuf types, and what Conveyor does with each.

The table follows ``pps.proto`` (``CreatePipelineRequest`` and the messages under it) as
python_pachyderm 7.6 ships it. Protobuf JSON names a field by its proto name
(``datum_tries``) or its JSON name (``datumTries``); both are read. A field is honoured
(read into the model), ignored with a warning (it changes where or how a worker runs on
Kubernetes, never what a datum computes), or refused (it has no meaning here, and
ignoring it would change the results). Fields of Pachyderm 1.x that 2.x removed get a
hint to their 2.x name.
"""

from __future__ import annotations

from typing import Any

# a type: a scalar name, ("list", T), ("map", T), ("enum", names) or a message name
Type = Any

SCALARS = frozenset(
    {"string", "bool", "int64", "uint64", "int32", "float", "duration", "timestamp"}
)

_RESOURCES: dict[str, Type] = {
    "cpu": "float",
    "memory": "string",
    "gpu": "GPUSpec",
    "disk": "string",
}
_SERVICE: dict[str, Type] = {
    "internal_port": "int32",
    "external_port": "int32",
    "ip": "string",
    "type": "string",
}

MESSAGES: dict[str, dict[str, Type]] = {
    "CreatePipelineRequest": {
        "pipeline": "Pipeline",
        "tf_job": "TFJob",
        "transform": "Transform",
        "parallelism_spec": "ParallelismSpec",
        "egress": "Egress",
        "update": "bool",
        "output_branch": "string",
        "s3_out": "bool",
        "resource_requests": "ResourceSpec",
        "resource_limits": "ResourceSpec",
        "sidecar_resource_limits": "ResourceSpec",
        "input": "Input",
        "description": "string",
        "reprocess": "bool",
        "service": "Service",
        "spout": "Spout",
        "datum_set_spec": "DatumSetSpec",
        "datum_timeout": "duration",
        "job_timeout": "duration",
        "salt": "string",
        "datum_tries": "int64",
        "scheduling_spec": "SchedulingSpec",
        "pod_spec": "string",
        "pod_patch": "string",
        "spec_commit": "Commit",
        "metadata": "Metadata",
        "reprocess_spec": "string",
        "autoscaling": "bool",
        "tolerations": ("list", "Toleration"),
        "sidecar_resource_requests": "ResourceSpec",
        "details_json": "string",
        "dry_run": "bool",
        "determined": "Determined",
    },
    "Pipeline": {"project": "Project", "name": "string"},
    "Project": {"name": "string"},
    "TFJob": {"tf_job": "string"},
    "Transform": {
        "image": "string",
        "cmd": ("list", "string"),
        "err_cmd": ("list", "string"),
        "env": ("map", "string"),
        "secrets": ("list", "SecretMount"),
        "image_pull_secrets": ("list", "string"),
        "stdin": ("list", "string"),
        "err_stdin": ("list", "string"),
        "accept_return_code": ("list", "int64"),
        "debug": "bool",
        "user": "string",
        "working_dir": "string",
        "dockerfile": "string",
        "memory_volume": "bool",
        "datum_batching": "bool",
    },
    "SecretMount": {"name": "string", "key": "string", "mount_path": "string", "env_var": "string"},
    "ParallelismSpec": {"constant": "uint64"},
    "Egress": {"URL": "string", "object_storage": "URLOnly", "sql_database": "SQLDatabaseEgress"},
    "URLOnly": {"url": "string"},
    "SQLDatabaseEgress": {"url": "string", "file_format": "FileFormat", "secret": "EgressSecret"},
    "FileFormat": {
        "type": ("enum", ("UNKNOWN", "CSV", "JSON", "PARQUET")),
        "columns": ("list", "string"),
    },
    "EgressSecret": {"name": "string", "key": "string"},
    "ResourceSpec": _RESOURCES,
    "GPUSpec": {"type": "string", "number": "int64"},
    "Input": {
        "pfs": "PFSInput",
        "join": ("list", "Input"),
        "group": ("list", "Input"),
        "cross": ("list", "Input"),
        "union": ("list", "Input"),
        "cron": "CronInput",
    },
    "PFSInput": {
        "project": "string",
        "name": "string",
        "repo": "string",
        "repo_type": "string",
        "branch": "string",
        "commit": "string",
        "glob": "string",
        "join_on": "string",
        "outer_join": "bool",
        "group_by": "string",
        "lazy": "bool",
        "empty_files": "bool",
        "s3": "bool",
        "trigger": "Trigger",
    },
    "Trigger": {
        "branch": "string",
        "all": "bool",
        "rate_limit_spec": "string",
        "size": "string",
        "commits": "int64",
        "cron_spec": "string",
    },
    "CronInput": {
        "name": "string",
        "project": "string",
        "repo": "string",
        "commit": "string",
        "spec": "string",
        "overwrite": "bool",
        "start": "timestamp",
    },
    "Service": _SERVICE,
    "Spout": {"service": "Service"},
    "DatumSetSpec": {"number": "int64", "size_bytes": "int64", "per_worker": "int64"},
    "SchedulingSpec": {"node_selector": ("map", "string"), "priority_class_name": "string"},
    "Commit": {"repo": "Repo", "id": "string", "branch": "Branch"},
    "Repo": {"name": "string", "type": "string", "project": "Project"},
    "Branch": {"repo": "Repo", "name": "string"},
    "Metadata": {"annotations": ("map", "string"), "labels": ("map", "string")},
    "Toleration": {
        "key": "string",
        "operator": ("enum", ("EMPTY", "EXISTS", "EQUAL")),
        "value": "string",
        "effect": ("enum", ("ALL_EFFECTS", "NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE")),
        "toleration_seconds": "int64",
    },
    "Determined": {"workspaces": ("list", "string")},
}


def json_name(field: str) -> str:
    """Protobuf's JSON name of a field: ``datum_tries`` -> ``datumTries``."""
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# Keys of the file -> proto field, per message (both spellings).
KEYS: dict[str, dict[str, str]] = {
    message: {
        **{field: field for field in fields},
        **{json_name(field): field for field in fields},
    }
    for message, fields in MESSAGES.items()
}

_K8S = "it places the worker on Kubernetes and changes no result; Conveyor ignores it"

# (message, field) -> why it is ignored (a warning)
IGNORED: dict[tuple[str, str], str] = {
    ("CreatePipelineRequest", "autoscaling"): (
        "Conveyor starts a pipeline's steps when a job runs and keeps nothing idle; "
        "it ignores autoscaling"
    ),
    ("CreatePipelineRequest", "sidecar_resource_limits"): (
        "Conveyor runs no storage sidecar; it ignores sidecar_resource_limits"
    ),
    ("CreatePipelineRequest", "sidecar_resource_requests"): (
        "Conveyor runs no storage sidecar; it ignores sidecar_resource_requests"
    ),
    ("CreatePipelineRequest", "scheduling_spec"): _K8S,
    ("CreatePipelineRequest", "pod_spec"): _K8S,
    ("CreatePipelineRequest", "pod_patch"): _K8S,
    ("CreatePipelineRequest", "tolerations"): _K8S,
    (
        "CreatePipelineRequest",
        "metadata",
    ): "Kubernetes labels and annotations; Conveyor ignores them",
    ("CreatePipelineRequest", "update"): (
        "a request flag, not part of a pipeline; `conveyor pipeline update` says it"
    ),
    ("CreatePipelineRequest", "reprocess"): (
        "a request flag, not part of a pipeline; `conveyor pipeline update --reprocess` says it"
    ),
    ("Transform", "image_pull_secrets"): (
        "Conveyor pulls images with the container runtime's own credentials; it ignores them"
    ),
    ("Transform", "memory_volume"): _K8S,
    ("Transform", "debug"): "Conveyor keeps every datum's log; it ignores transform.debug",
}

_NO_S3 = "Conveyor has no S3 gateway; read the files at /pfs/<input> and write to /pfs/out"

# (message, field) -> why it is refused and what to do
REFUSED: dict[tuple[str, str], str] = {
    ("CreatePipelineRequest", "tf_job"): (
        "TFJob pipelines need Kubeflow, which Conveyor does not run; use a transform "
        "that trains in its own process"
    ),
    ("CreatePipelineRequest", "egress"): (
        "Conveyor does not push output commits to object storage or databases; fetch "
        "the output dataset and copy it, or add a pipeline step that does"
    ),
    ("CreatePipelineRequest", "s3_out"): _NO_S3,
    ("CreatePipelineRequest", "service"): (
        "service pipelines serve requests forever; Conveyor runs jobs that finish (use a "
        "deployment for a service)"
    ),
    ("CreatePipelineRequest", "spout"): (
        "spouts run forever and write their own commits; put the data with "
        "`conveyor data put` from your producer instead"
    ),
    ("CreatePipelineRequest", "spec_commit"): (
        "set by Pachyderm when it stores a spec; remove it from the file"
    ),
    ("CreatePipelineRequest", "details_json"): (
        "an internal field of Pachyderm's API; remove it from the file"
    ),
    ("CreatePipelineRequest", "dry_run"): (
        "`conveyor pipeline check` checks a spec without creating anything; remove dry_run"
    ),
    ("CreatePipelineRequest", "determined"): (
        "Determined workspaces need a Determined cluster, which Conveyor does not run"
    ),
    ("Transform", "dockerfile"): (
        "Conveyor builds images from the repository's Dockerfile in its CI flow; "
        "give transform.image instead"
    ),
    ("Transform", "datum_batching"): (
        "Conveyor runs each datum as its own step; remove datum_batching and let the "
        "command process one datum"
    ),
    ("PFSInput", "s3"): _NO_S3,
    ("PFSInput", "trigger"): (
        "branch triggers are not supported yet; point the input at the branch you want processed"
    ),
}

# Pachyderm 1.x keys that 2.x removed or renamed: (message, key) -> hint
OLD: dict[tuple[str, str], str] = {
    ("Input", "atom"): "input.atom is Pachyderm 1.x; 2.x calls it input.pfs",
    ("Input", "git"): (
        "git inputs were removed in Pachyderm 2.x; put the data in a dataset and use input.pfs"
    ),
    ("CreatePipelineRequest", "enable_stats"): (
        "enable_stats is Pachyderm 1.x; 2.x always keeps datum stats: remove it"
    ),
    ("CreatePipelineRequest", "standby"): "standby is Pachyderm 1.x; 2.x calls it autoscaling",
    ("CreatePipelineRequest", "scale_down_threshold"): (
        "scale_down_threshold is Pachyderm 1.x; 2.x uses autoscaling"
    ),
    ("CreatePipelineRequest", "chunk_spec"): (
        "chunk_spec is Pachyderm 1.x; 2.x calls it datum_set_spec"
    ),
    ("CreatePipelineRequest", "cache_size"): "cache_size is Pachyderm 1.x; 2.x removed it",
    ("CreatePipelineRequest", "max_queue_size"): "max_queue_size is Pachyderm 1.x; 2.x removed it",
    ("CreatePipelineRequest", "hashtree_spec"): "hashtree_spec is Pachyderm 1.x; 2.x removed it",
    ("CreatePipelineRequest", "incremental"): (
        "incremental is Pachyderm 1.x; 2.x is always incremental: remove it"
    ),
    ("CreatePipelineRequest", "output_repo"): (
        "output_repo is not a 2.x field; the output dataset is named after the pipeline"
    ),
    ("CreatePipelineRequest", "batch"): "batch is Pachyderm 1.x; 2.x removed it",
}
OLD_KEYS: dict[str, dict[str, str]] = {}
for (_message, _key), _hint in OLD.items():
    OLD_KEYS.setdefault(_message, {})[_key] = _hint
    OLD_KEYS[_message][json_name(_key)] = _hint
