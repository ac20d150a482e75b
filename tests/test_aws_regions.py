"""A region EC2 does not have is refused at once, offline, with the closest names: by the
class commands (--region, AWS_REGION), by the stack files flasklab reads, and by the Pulumi
program before any resource."""

from __future__ import annotations

import time

import pulumi
import pytest
import yaml
from pulumi.runtime import config as runtime_config

from flasklab import stacks
from flasklab.__main__ import main
from flasklab.aws_regions import ec2_regions, region_problem
from flasklab.pulumi_config import read_stack_config
from flasklab.settings import ConfigError


def test_every_region_botocore_knows_is_accepted_and_typos_get_the_closest():
    assert {"us-east-1", "eu-west-1", "eu-south-2", "us-gov-west-1", "cn-north-1"} <= ec2_regions()
    assert all(region_problem(region) == "" for region in ec2_regions())
    assert "Did you mean us-east-1?" in region_problem("us-east1")
    assert "Did you mean eu-west-1" in region_problem("eu-wset-1")
    assert "Regions look like eu-west-1" in region_problem("mars")


@pytest.mark.parametrize("command", ["status", "stop", "start", "sweep"])
def test_class_commands_refuse_a_mistyped_region_at_once(command, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # nothing must be asked of AWS anyway
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    started = time.monotonic()
    assert main(["class", command, "--course", "daw", "--region", "us-east1"]) == 2
    assert time.monotonic() - started < 2
    error = capsys.readouterr().err
    assert "--region: 'us-east1' is not an AWS region EC2 has. Did you mean us-east-1?" in error


def test_aws_region_from_the_environment_is_checked_too(capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-westt-1")
    assert main(["class", "status", "--course", "daw"]) == 2
    assert "Did you mean eu-west-1" in capsys.readouterr().err


def test_a_stack_file_with_a_mistyped_region_is_refused(tmp_path, monkeypatch):
    document = yaml.safe_load((stacks.STACKS_DIR / "Pulumi.dev.yaml").read_text())
    document["config"]["aws:region"] = "eu-nort-1"
    (tmp_path / "Pulumi.typo.yaml").write_text(yaml.safe_dump(document))
    monkeypatch.setattr(stacks, "STACKS_DIR", tmp_path)
    with pytest.raises(ConfigError) as caught:
        stacks.load_stack("typo")
    assert "aws:region: 'eu-nort-1' is not an AWS region EC2 has. Did you mean eu-north-1?" in str(
        caught.value
    )
    document["config"]["aws:region"] = "eu-north-1"
    (tmp_path / "Pulumi.typo.yaml").write_text(yaml.safe_dump(document))
    assert stacks.load_stack("typo").server_name


class NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args):
        raise AssertionError(f"no resource may be declared: {args.name}")

    def call(self, args):
        raise AssertionError(f"no call may be made: {args.token}")


def test_the_program_stops_before_any_resource_on_a_mistyped_region():
    pulumi.runtime.set_mocks(NoResources(), project="flasklab", stack="ana", preview=False)
    runtime_config.set_all_config({"aws:region": "us-east1", "flasklab:course": "daw"})
    try:
        with pytest.raises(pulumi.RunError, match="Did you mean us-east-1"):
            read_stack_config()
        runtime_config.set_all_config({"aws:region": "us-east-1", "flasklab:course": "daw"})
        assert read_stack_config() == {"course": "daw"}
    finally:
        runtime_config.set_all_config({})
