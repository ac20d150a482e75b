"""The start link's handler (flasklab/start_link.py) against moto's EC2: a student's token
starts that student's server and no other; a wrong token, another student's or none starts
nothing; tokens are compared in constant time and never kept, only their digests."""

from __future__ import annotations

import json

import pytest

from flasklab import start_link
from tests.conftest import LOG_GROUP, MOCK_ACCOUNT_ID, REGION

TOKENS = {"ana": "AnaToken0123456789abcdefghijklmnop", "ben": "BenToken0123456789abcdefghijklmnop"}


@pytest.fixture
def servers(ec2, monkeypatch):
    """ana's and ben's servers, stopped, and the function's environment as the stack sets it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # Lambda sets the function's region
    ids = {}
    for student in TOKENS:
        [instance] = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"]
        ids[student] = instance["InstanceId"]
    ec2.stop_instances(InstanceIds=list(ids.values()))
    links = {s: {"instance": ids[s], "digest": start_link.token_digest(t)} for s, t in TOKENS.items()}
    monkeypatch.setenv(start_link.LINKS_ENV, json.dumps(links))
    return ids


def request(student: str, token: str, method: str = "POST") -> dict:
    event = {
        "queryStringParameters": {"student": student, "token": token},
        "requestContext": {"http": {"method": method}},
    }
    return start_link.handler(event)


def states(ec2, ids: dict[str, str]) -> dict[str, str]:
    found = {}
    for reservation in ec2.describe_instances(InstanceIds=list(ids.values()))["Reservations"]:
        for instance in reservation["Instances"]:
            student = next(s for s, i in ids.items() if i == instance["InstanceId"])
            found[student] = instance["State"]["Name"]
    return found


def test_a_students_token_starts_their_server_and_no_other(ec2, servers):
    answer = request("ana", TOKENS["ana"])
    assert answer["statusCode"] == 200
    assert states(ec2, servers) == {"ana": "running", "ben": "stopped"}
    assert "Starting" in answer["body"]
    shown = request("ana", TOKENS["ana"], method="GET")["body"]
    assert "<strong>running</strong>" in shown
    [reservation] = ec2.describe_instances(InstanceIds=[servers["ana"]])["Reservations"]
    assert reservation["Instances"][0]["PublicIpAddress"] in shown


def test_a_get_shows_the_state_and_starts_nothing(ec2, servers):
    answer = request("ben", TOKENS["ben"], method="GET")
    assert answer["statusCode"] == 200 and "<strong>stopped</strong>" in answer["body"]
    assert "<form method='post'>" in answer["body"]
    assert states(ec2, servers) == {"ana": "stopped", "ben": "stopped"}


@pytest.mark.parametrize(
    ("student", "token"),
    [
        ("ana", TOKENS["ben"]),  # another student's token
        ("ana", "AnaToken0123456789abcdefghijklmnoX"),  # one character off
        ("ana", ""),
        ("zoe", TOKENS["ana"]),  # not a student of the stack
        ("", ""),
    ],
)
def test_a_wrong_token_starts_nothing_and_says_nothing_more(ec2, servers, student, token):
    answer = request(student, token)
    assert answer["statusCode"] == 403
    assert "Not a valid start link" in answer["body"]
    assert servers["ana"] not in answer["body"] and "stopped" not in answer["body"]
    assert states(ec2, servers) == {"ana": "stopped", "ben": "stopped"}


def test_tokens_are_compared_in_constant_time_for_known_and_unknown_students(servers, monkeypatch):
    compared = []
    real = start_link.hmac.compare_digest

    def recording(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(start_link.hmac, "compare_digest", recording)
    assert start_link.authorised_instance("ana", TOKENS["ana"]) == servers["ana"]
    assert start_link.authorised_instance("zoe", TOKENS["ana"]) is None
    assert start_link.authorised_instance("ben", TOKENS["ana"]) is None
    assert len(compared) == 3, "every request is compared, an unknown student's too"


def test_the_function_keeps_only_digests(servers, monkeypatch):
    environment = start_link.os.environ[start_link.LINKS_ENV]
    assert not any(token in environment for token in TOKENS.values())


# The resources under Pulumi's mocks.
FUNCTION = "aws:lambda/function:Function"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
PERMISSION = "aws:lambda/permission:Permission"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
STACK = "class-demo"


def test_no_start_link_by_default(run_program):
    run = run_program(STACK)
    assert run.of_type(FUNCTION) == [] and "startLinks" not in run.outputs


def test_a_class_gets_one_function_and_a_secret_link_per_student(run_program):
    from urllib.parse import parse_qs, urlsplit

    from tests.conftest import mock_random_password

    run = run_program(STACK, startLink="true")
    function = run.one(FUNCTION)["inputs"]
    assert (function["runtime"], function["handler"]) == ("python3.12", "start_link.handler")
    links = json.loads(function["environment"]["variables"][start_link.LINKS_ENV])
    instances = {r["name"]: f"{r['name']}-id" for r in run.of_type("aws:ec2/instance:Instance")}
    prefix = f"flasklab-{STACK}-start-link"
    for student in ("ana", "ben", "carla"):
        token = mock_random_password(f"{prefix}-{student}-token")
        assert links[student] == {
            "instance": instances[f"flasklab-{STACK}-{student}-instance"],
            "digest": start_link.token_digest(token),
        }
        url = urlsplit(run.outputs["startLinks"][student])
        assert url.netloc == f"{prefix}-url.lambda-url.eu-west-1.on.aws"
        assert parse_qs(url.query) == {"student": [student], "token": [token]}
        assert token not in json.dumps(run.wire_inputs[(FUNCTION, f"{prefix}-function")])
    assert "startLinks" in run.secret_outputs
    assert run.one(FUNCTION_URL)["inputs"]["authorizationType"] == "NONE"
    permissions = {(p["inputs"]["action"], p["inputs"]["principal"]) for p in run.of_type(PERMISSION)}
    assert permissions == {("lambda:InvokeFunctionUrl", "*"), ("lambda:InvokeFunction", "*")}


def test_a_one_student_stack_gets_its_link(run_program):
    run = run_program("dev", startLink="true")
    assert run.outputs["startLink"].startswith("https://flasklab-dev-start-link-url.lambda-url.")
    assert "student=dev&token=" in run.outputs["startLink"] and "startLink" in run.secret_outputs


def test_the_role_may_describe_and_start_only_this_stacks_servers_and_parliament_agrees(run_program):
    from parliament import analyze_policy_string

    run = run_program(STACK, startLink="true")
    [role] = [r for r in run.of_type(ROLE) if "start-link" in r["name"]]
    [trust] = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}
    [policy_resource] = [r for r in run.of_type(ROLE_POLICY) if "start-link" in r["name"]]
    text = policy_resource["inputs"]["policy"]
    policy = json.loads(text)
    assert sorted(str(s["Action"]) for s in policy["Statement"]) == [
        "['logs:CreateLogStream', 'logs:PutLogEvents']",
        "ec2:DescribeInstances",
        "ec2:StartInstances",
    ]
    [group] = [g for g in run.of_type(LOG_GROUP) if "start-link" in g["name"]]
    assert group["inputs"]["name"] == f"/flasklab/{STACK}/start-link"
    [logs] = [s for s in policy["Statement"] if "logs:PutLogEvents" in s["Action"]]
    group_arn = f"arn:aws:logs:eu-west-1:{MOCK_ACCOUNT_ID}:log-group:/flasklab/{STACK}/start-link"
    assert logs["Resource"] == f"{group_arn}:*"
    [start] = [s for s in policy["Statement"] if s["Action"] == "ec2:StartInstances"]
    assert start["Resource"] == f"arn:aws:ec2:*:{MOCK_ACCOUNT_ID}:instance/*"
    wanted = start["Condition"]["StringEquals"]
    for instance in run.of_type("aws:ec2/instance:Instance"):
        tags = instance["inputs"]["tags"]
        assert all(tags[key.removeprefix("aws:ResourceTag/")] == value for key, value in wanted.items())
    assert wanted["aws:ResourceTag/stack"] == STACK
    findings = analyze_policy_string(text).findings
    assert findings == [], [str(finding) for finding in findings]
