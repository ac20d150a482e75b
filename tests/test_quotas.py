"""AWS's quotas before any resource (flasklab/quotas.py, components/account_quotas.py): a
class that does not fit the account's Standard vCPUs or Elastic IPs is refused under
Pulumi's mocks with the numbers and what to do, before anything is declared; a quota
that cannot be read is warned of, and the class goes on."""

from __future__ import annotations

import pulumi
import pytest

from flasklab import quotas
from tests.conftest import ELASTIC_IP, SERVICE_QUOTA

VCPUS, EIPS = quotas.STANDARD_VCPUS, quotas.ELASTIC_IPS


def class_of(roster, students: int) -> None:
    roster("student\n" + "".join(f"s{n:02d}\n" for n in range(students)))


def test_thirty_t3_medium_against_32_vcpus_are_refused_before_any_resource(run_program, roster):
    class_of(roster, 30)
    run_program.quotas = {VCPUS: 32.0, EIPS: 5.0}
    with pytest.raises(pulumi.RunError) as refused:
        run_program("class-demo", roster="rosters/test.csv", instanceType="t3.medium")
    message = str(refused.value)
    assert "nothing was created" in message
    assert "needs 60 vCPUs (30 x t3.medium (2 vCPU))" in message
    assert "the account's quota in eu-west-1 is 32 (\"Running On-Demand Standard" in message
    assert f"--quota-code {VCPUS} --desired-value 60" in message
    assert "instanceType t2.small" in message, "a smaller type that fits: 30 x 1 vCPU"
    assert "at most 16 servers of t3.medium" in message
    assert "Other instances" in message, "the quota is shared with the account's other instances"
    assert "FLASKLAB_QUOTA_CHECK=off pulumi destroy --run-program" in message
    assert run_program.runs[-1].resources == []


def test_a_class_that_no_longer_fits_can_still_be_destroyed_with_the_check_off(
    run_program, roster, monkeypatch
):
    """`pulumi destroy --run-program` runs the program: the check must not lock the teacher in."""
    class_of(roster, 30)
    run_program.quotas = {VCPUS: 32.0, EIPS: 5.0}
    monkeypatch.setenv("FLASKLAB_QUOTA_CHECK", "off")
    run = run_program("class-demo", roster="rosters/test.csv", instanceType="t3.medium")
    assert len(run.of_type("aws:ec2/instance:Instance")) == 30
    assert any("FLASKLAB_QUOTA_CHECK=off: the class does not fit" in warning for warning in run.warnings)


def test_sixteen_t3_medium_fit_in_32_vcpus(run_program, roster):
    class_of(roster, 16)
    run_program.quotas = {VCPUS: 32.0, EIPS: 5.0}
    run = run_program("class-demo", roster="rosters/test.csv", instanceType="t3.medium")
    assert len(run.outputs["students"]) == 16
    assert [c["args"]["quotaCode"] for c in run.calls if c["token"] == SERVICE_QUOTA] == [VCPUS]


def test_six_elastic_ips_against_five_are_refused(run_program, roster):
    class_of(roster, 6)
    run_program.quotas = {VCPUS: 1152.0, EIPS: 5.0}
    with pytest.raises(pulumi.RunError) as refused:
        run_program("class-demo", roster="rosters/test.csv", staticAddress="true")
    message = str(refused.value)
    assert "needs 6 Elastic IPs" in message and "is 5" in message
    assert f"--quota-code {EIPS} --desired-value 6" in message
    assert "staticAddress false" in message
    assert run_program.runs[-1].resources == []


def test_five_elastic_ips_fit_and_none_are_asked_for_without_the_setting(run_program, roster):
    class_of(roster, 5)
    run = run_program("class-demo", roster="rosters/test.csv", staticAddress="true")
    assert len(run.of_type(ELASTIC_IP)) == 5
    class_of(roster, 6)
    run = run_program("class-demo", roster="rosters/test.csv")
    assert EIPS not in [c["args"]["quotaCode"] for c in run.calls if c["token"] == SERVICE_QUOTA]


def test_a_quota_that_cannot_be_read_is_warned_of_and_the_class_goes_on(run_program, roster):
    class_of(roster, 30)
    run_program.quotas = {}  # AWS Academy: servicequotas:GetServiceQuota denied
    run = run_program("class-demo", roster="rosters/test.csv", instanceType="t3.medium")
    assert len(run.outputs["students"]) == 30
    [warning] = [w for w in run.warnings if VCPUS in w]
    assert "AccessDeniedException" in warning and "goes on without checking" in warning


def test_a_mixed_class_counts_each_types_vcpus(run_program, roster):
    roster("student,instanceType\nana,t3.xlarge\nben,t3.xlarge\ncarla,\n")
    run_program.quotas = {VCPUS: 8.0, EIPS: 5.0}
    with pytest.raises(pulumi.RunError, match=r"needs 10 vCPUs \(1 x t2.medium \(2 vCPU\), 2 x t3.xlarge"):
        run_program("class-demo", roster="rosters/test.csv", instanceType="t2.medium")


@pytest.mark.parametrize(
    ("instance_type", "standard"),
    [
        ("t3.medium", True),
        ("m7g.large", True),
        ("c5.xlarge", True),
        ("inf2.xlarge", False),
        ("dl1.24xlarge", False),
        ("trn1.2xlarge", False),
        ("g5.xlarge", False),
        ("p4d.24xlarge", False),
        ("mac2.metal", False),
        ("x2idn.large", False),
        ("u-6tb1.metal", False),
        ("hpc6a.48xlarge", False),
    ],
)
def test_only_standard_families_count_against_the_standard_quota(instance_type, standard):
    assert quotas.is_standard(instance_type) is standard
