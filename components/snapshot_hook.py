"""The resource hook that keeps a student's disk: before Pulumi deletes a server's instance
(a rebuild, a student taken off the roster, a destroy), its root volume is snapshotted
(flasklab.snapshots) and the delete waits until the snapshot is complete. If the snapshot
cannot be made, the hook fails and so does the delete: the instance stays.

Hooks are the program's: `pulumi up` runs them; `pulumi destroy` only with --run-program
(without it, it deletes without snapshots, and docs/term.md says so)."""

from __future__ import annotations

import pulumi

from flasklab.classroom.account import AccountError, aws_errors, ec2_client
from flasklab.snapshots import snapshot_root_volume

# The state names an instance's delete hooks, and the program run that deletes it must
# register a hook of that name (a student taken off the roster is no longer declared):
# this name never changes.
HOOK_NAME = "flasklab-snapshot-before-delete"


def snapshot_before_delete() -> pulumi.ResourceHook:
    """The hook, made once per program run (a hook is registered with the run's engine) and
    bound to every instance."""
    return pulumi.ResourceHook(HOOK_NAME, _snapshot)


def _snapshot(args: pulumi.ResourceHookArgs) -> None:
    region = pulumi.Config("aws").get("region")
    try:
        client = ec2_client(region)
        with aws_errors(region):
            snapshot_id = snapshot_root_volume(client, args.id, args.old_outputs or {})
    except AccountError as error:
        raise RuntimeError(
            f"flasklab: {args.name} ({args.id}) is kept: its disk could not be snapshotted before "
            f"deletion: {error}"
        ) from None
    if snapshot_id:
        pulumi.log.info(f"flasklab: the disk of {args.name} ({args.id}) is kept as snapshot {snapshot_id}")
